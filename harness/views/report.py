"""`ralph report`: the plan as one static HTML page that opens from disk, no server.

Phases with their status, goal, exit checks and approval; each feature with its status, key
figures, the evidence of its last verification (with links to the check logs), its attempts'
transcripts and prompts, and the W&B runs its result files name (runlinks.py); then the plots that
`experiments/` holds. Images are embedded as data URIs, so the page stays whole when it is
copied or mailed; links to logs and transcripts are relative to the page. Built with the
standard library's `html.escape` (no template engine in the harness's dependencies).
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from harness.books.records import Evidence
from harness.fileio import atomic_write_text
from harness.plan.prd import Check
from harness.project import Project
from harness.run.prompt import describe_check
from harness.views.show import attempt_dirs
from harness.views.status import board

MAX_IMAGE_BYTES = 4_000_000  # larger plots are linked, not embedded
STATUS_COLOURS = {
    "passing": "#1a7f37", "approved": "#1a7f37", "done": "#1a7f37", "failing": "#cf222e", "blocked": "#cf222e",
    "rejected": "#cf222e", "awaiting approval": "#8250df", "exit checks pending": "#0969da",
    "in progress": "#9a6700", "running": "#9a6700", "pending": "#6e7781", "not started": "#6e7781", "planned": "#6e7781",
    "pass": "#1a7f37", "fail": "#cf222e", "error": "#cf222e", "timeout": "#cf222e",
}
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin:28px 0 8px}h3{margin:0 0 6px;font-size:16px}
.muted{color:#59636e}.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:14px 16px;margin:12px 0}
.badge{display:inline-block;padding:1px 9px;border-radius:12px;color:#fff;font-size:13px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border-bottom:1px solid #e6eaef;padding:4px 8px;
text-align:left;vertical-align:top;font-size:14px}th{background:#f6f8fa}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto;
max-height:240px;margin:4px 0}
.figures span{display:inline-block;margin:2px 8px 2px 0;padding:2px 8px;background:#ddf4ff;border-radius:6px}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:14px}
.plots figure{margin:0;background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:8px}
.plots img{width:100%;height:auto}figcaption{font-size:13px;color:#59636e;word-break:break-all}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def badge(status: str) -> str:
    return f'<span class="badge" style="background:{STATUS_COLOURS.get(status, "#6e7781")}">{esc(status)}</span>'


def link(target: Path, page_dir: Path, text: str) -> str:
    """A link from the page to a file, relative so the folder can be moved as a whole."""
    return f'<a href="{esc(Path(os.path.relpath(target, page_dir)).as_posix())}">{esc(text)}</a>'


def image(path: Path, repo: Path, page_dir: Path) -> str:
    rel = path.relative_to(repo).as_posix()
    if path.stat().st_size <= MAX_IMAGE_BYTES:
        data = base64.b64encode(path.read_bytes()).decode()
        target = esc(Path(os.path.relpath(path, page_dir)).as_posix())
        img = f'<a href="{target}" title="open full size"><img alt="{esc(rel)}" src="data:image/png;base64,{data}"></a>'
    else:
        img = link(path, page_dir, f"{rel} (too large to embed)")
    return f"<figure>{img}<figcaption>{esc(rel)}</figcaption></figure>"


def wandb_links(runs: list[dict[str, Any]], repo: Path, page_dir: Path) -> str:
    """The W&B runs of a feature: a link to each run's page, or offline its local folder and the upload command."""
    items = []
    for r in runs:
        if r["url"]:
            items.append(f'<a href="{esc(r["url"])}">{esc(r["id"])}</a>')
        elif r["dir"]:
            folder = repo / r["dir"]
            shown = link(folder, page_dir, r["dir"]) if folder.exists() else f"<code>{esc(r['dir'])}</code>"
            items.append(f"<code>{esc(r['id'])}</code> (offline: {shown}; upload with <code>wandb sync "
                         f"{esc(r['dir'])}</code>)")
        else:
            items.append(f"<code>{esc(r['id'])}</code> (offline)")
    return '<div class="wandb">W&amp;B runs: ' + "<br>".join(items) + "</div>" if items else ""


def evidence_rows(evidence: list[Evidence], checks: list[Check], timeout_s: float, page_dir: Path) -> str:
    rows = []
    for e in evidence:
        log = link(Path(e.log), page_dir, "log") if e.log and Path(e.log).is_file() else ""
        tail = "" if e.passed or not e.output_tail.strip() else f"<pre>{esc(e.output_tail.strip()[-1500:])}</pre>"
        rows.append(f"<tr><td>{esc(e.check)}</td><td>{badge(e.verdict)}</td>"
                    f"<td>{esc(e.detail)}{tail}</td><td>{e.duration_s:.1f}s</td><td>{log}</td></tr>")
    if not rows:
        planned = "".join(f"<li><code>{esc(describe_check(c, timeout_s)[2:])}</code></li>" for c in checks)
        return f'<p class="muted">not verified yet; judged by:</p><ul>{planned}</ul>'
    return ("<table><tr><th>check</th><th>verdict</th><th>detail</th><th>time</th><th></th></tr>"
            + "".join(rows) + "</table>")


def feature_card(project: Project, row: dict[str, Any], page_dir: Path) -> str:
    state = project.ledger.feature(row["id"])
    figures = "".join([*(f"<span>{esc(c['check'])}: {esc(c['summary'])}</span>" for c in row["comparisons"]),
                       *(f"<span>{esc(r['text'])}</span>" for r in row["report"]),
                       *(f"<span>{esc(k)} = {v:.4g}</span>" for k, v in row["metrics"].items())])
    attempts = [
        f"attempt {n}: " + " · ".join(link(d / name, page_dir, name) for name in ("transcript.jsonl", "prompt.md")
                                       if (d / name).is_file())
        for n, d in sorted(attempt_dirs(project.repo, row["id"]).items())
    ]
    parts = [
        f'<div class="card" id="{esc(row["id"])}"><h3>{esc(row["id"])}: {esc(row["title"])} {badge(row["status"])}</h3>',
        f'<div class="muted">{row["attempts"]} attempt(s), ${row["cost_usd"]:.4f}, {row["tokens"]:,} tokens'
        + (f' · depends on {esc(", ".join(row["depends_on"]))}' if row["depends_on"] else "")
        + (f' · verified at <code>{esc((row["verified_commit"] or "")[:10])}</code> {esc(row["verified_at"] or "")}'
           if row["verified_commit"] and row["status"] == "passing" else "") + "</div>",
    ]
    if row["blocked_reason"]:
        parts.append(f'<p><b>blocked:</b> {esc(row["blocked_reason"])}</p>')
    if figures:
        parts.append(f'<div class="figures">{figures}</div>')
    parts.append(evidence_rows(state.last_evidence, project.prd.feature(row["id"]).verify,
                               project.prd.defaults.check_timeout_s, page_dir))
    if attempts:
        parts.append("<div>transcripts: " + "<br>".join(attempts) + "</div>")
    parts.append(wandb_links(row["wandb"], project.repo, page_dir))
    parts.append("</div>")
    return "".join(parts)


def phase_section(project: Project, p: dict[str, Any], page_dir: Path) -> str:
    exits = ", ".join(f"{esc(e['check'])}: {esc(e['verdict'])}" for e in p["exit"]) or "none"
    d = p["decision"]
    approval = (f"{esc(d['decision'])} by {esc(d['by'])} at {esc(d['at'])}" + (f" ({esc(d['note'])})" if d["note"] else "")
                if d else ("requested" if p["approval_requested"] else "required" if p["approval_required"] else "not required"))
    features = "".join(feature_card(project, f, page_dir) for f in p["features"]) or '<p class="muted">no features yet</p>'
    return (f'<section id="phase-{p["id"]}"><h2>Phase {p["id"]}: {esc(p["name"])} {badge(p["status"])} '
            f'<span class="muted">{p["passing"]}/{p["total"]}</span></h2>'
            + (f"<p>{esc(p['goal'])}</p>" if p["goal"] else "")
            + f'<p class="muted">exit checks: {exits} · approval: {approval}</p>{features}</section>')


def plots_section(repo: Path, page_dir: Path) -> str:
    plots = sorted((repo / "experiments").glob("**/*.png")) if (repo / "experiments").is_dir() else []
    if not plots:
        return ""
    groups: dict[Path, list[Path]] = {}
    for path in plots:
        groups.setdefault(path.parent, []).append(path)
    out = ['<section id="plots"><h2>Plots in experiments/</h2>']
    for folder, paths in groups.items():
        readme = folder / "README.md"
        title = folder.relative_to(repo).as_posix()
        out.append(f"<h3>{link(readme, page_dir, title) if readme.is_file() else esc(title)}</h3>")
        out.append('<div class="plots">' + "".join(image(p, repo, page_dir) for p in paths) + "</div>")
    out.append("</section>")
    return "".join(out)


def render_report(project: Project, page_dir: Path) -> str:
    data = board(project)
    t = data["totals"]
    plots = plots_section(project.repo, page_dir)
    nav = " · ".join([*(f'<a href="#phase-{p["id"]}">phase {p["id"]}</a>' for p in data["phases"]),
                      *(['<a href="#plots">plots</a>'] if plots else [])])
    problem = (f'<p style="color:#cf222e"><b>progress.txt was edited outside ralph:</b> {esc(data["progress_problem"])}</p>'
               if data["progress_problem"] else "")
    body = [
        f"<h1>{esc(data['project'])}</h1>",
        f"<p>{esc(data['description'])}</p>" if data["description"] else "",
        f'<p class="muted">commit <code>{esc((data["commit"] or "none")[:10])}</code> · generated {esc(data["generated_at"])}'
        f' · {t["passing"]}/{t["features"]} features passing, {t["blocked"]} blocked, {t["attempts"]} attempts, '
        f'${t["cost_usd"]:.2f}</p>',
        problem,
        f"<nav>{nav}</nav>",
        *(phase_section(project, p, page_dir) for p in data["phases"]),
        plots,
    ]
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(data['project'])}: ralph report"
            f"</title><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{STYLE}</style>"
            f"</head><body><main>{''.join(body)}</main></body></html>\n")


def write_report(project: Project, out: Path) -> Path:
    """Render the page into `out` (its folder is created); returns the path."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_report(project, out.parent))
    return out
