"""`ralph report`: the results page, one static HTML file that opens from disk, no server.

For each phase: its status, goal, exit checks and approval; for each feature, what a researcher reads
first: its figures per seed with their spread and the control (views/results.py), a chart of each gated
quantity across attempts and seeds (views/charts.py), every attempt, failed ones too, with its verdict,
cost, time, checks, diff and the plots its checks wrote (views/report_attempts.py), the optimize
leaderboard when it has one (views/leaderboard.py), and the W&B runs its result files name; then any
other plots `experiments/` holds. Images are data URIs, so the page stays whole when copied or mailed;
links to logs and transcripts are relative to the page. What agents wrote is escaped (views/html.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.books.attempts import AttemptEntry, read_attempts
from harness.fileio import atomic_write_text
from harness.plan.prd import Check
from harness.project import Project
from harness.views.charts import chart_svg
from harness.views.html import STYLE, badge, esc, image, link, table, web_url
from harness.views.leaderboard import read_leaderboard
from harness.views.report_attempts import attempts_section, evidence_rows
from harness.views.results import Column, attempt_series, seed_columns
from harness.views.show import attempt_dirs
from harness.views.status import board


def wandb_links(runs: list[dict[str, Any]], repo: Path, page_dir: Path) -> str:
    """The W&B runs of a feature: a link to each run's page, or offline its local folder and the upload command."""
    items = []
    for r in runs:
        if r["url"] and web_url(r["url"]):
            items.append(f'<a href="{esc(r["url"])}">{esc(r["id"])}</a>')
        elif r["url"]:  # what a results file (the agent's code wrote it) calls a URL: `javascript:` is not one
            items.append(f"<code>{esc(r['id'])}</code> (url not http(s), not linked: <code>{esc(r['url'])}</code>)")
        elif r["dir"]:
            folder = repo / r["dir"]
            shown = link(folder, page_dir, r["dir"]) if folder.exists() else f"<code>{esc(r['dir'])}</code>"
            items.append(f"<code>{esc(r['id'])}</code> (offline: {shown}; upload with <code>wandb sync "
                         f"{esc(r['dir'])}</code>)")
        else:
            items.append(f"<code>{esc(r['id'])}</code> (offline)")
    return '<div class="wandb">W&amp;B runs: ' + "<br>".join(items) + "</div>" if items else ""


def _value(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def seed_table(columns: list[Column]) -> str:
    """The figures per seed (a row each), then their mean, sample std and n, and what gates them: a gate's
    threshold, or which side of a comparison is the control."""
    if not columns:
        return ""
    seeds = sorted({s for c in columns for s in c.values})
    head = ["seed", *(f'<span class="control">{esc(c.label)}</span>' if c.role == "control" else esc(c.label)
                      for c in columns)]
    rows = [[str(s), *(_value(c.values.get(s)) for c in columns)] for s in seeds]
    gated = ["gate", *(esc(f"{c.op} {c.threshold:g}") if c.threshold is not None else
                       "control" if c.role == "control" else "not gated" if c.role == "report" else "compared"
                       for c in columns)]
    rows += [["mean", *(_value(c.mean) for c in columns)], ["std (n-1)", *(_value(c.std) for c in columns)],
             ["n", *(str(len(c.values)) for c in columns)], gated]
    numeric = list(range(1, len(columns) + 1))
    return ("<h4>figures per seed (last verification)</h4>"
            + table(head, rows, numeric=numeric, row_class=[""] * len(seeds) + ["sum"]))


def charts(entries: list[AttemptEntry], checks: list[Check]) -> str:
    """A chart per gated quantity across the recorded attempts and their seeds."""
    drawn = [f'<img class="chart" alt="{esc("chart: " + s.title)}" src="{chart_svg(s)}">'
             for s in attempt_series(entries, checks)]
    return "<h4>across attempts and seeds</h4>" + "".join(drawn) if drawn else ""


def leaderboard_section(repo: Path, feature_id: str) -> str:
    """The optimize leaderboard, when the feature has one (its input format: views/leaderboard.py)."""
    found = read_leaderboard(repo, feature_id)
    if found is None:
        return ""
    title = f"<h4>optimize leaderboard <span class=\"muted\">({esc(found.path.name)})</span></h4>"
    if found.problem:
        return f'{title}<p style="color:#cf222e">{esc(str(found.path))} {esc(found.problem)}</p>'
    rows = [[esc(row.get(c, "")) for c in found.columns] for row in found.rows]
    more = f'<p class="muted">and {found.more} more trials</p>' if found.more else ""
    return title + table([esc(c) for c in found.columns], rows) + more


def feature_card(project: Project, row: dict[str, Any], entries: list[AttemptEntry], page_dir: Path) -> str:
    """One feature: status, figures per seed, charts, leaderboard, last verification, attempts (`entries`: its
    history), W&B runs."""
    state = project.ledger.feature(row["id"])
    checks = project.prd.feature(row["id"]).verify
    timeout_s = project.prd.defaults.check_timeout_s
    figures = "".join([*(f"<span>{esc(c['check'])}: {esc(c['summary'])}</span>" for c in row["comparisons"]),
                       *(f"<span>{esc(r['text'])}</span>" for r in row["report"]),
                       *(f"<span>{esc(k)} = {v:.4g}</span>" for k, v in row["metrics"].items())])
    parts = [
        f'<div class="card" id="{esc(row["id"])}"><h3>{esc(row["id"])}: {esc(row["title"])} {badge(row["status"])}</h3>',
        f'<div class="muted">{row["attempts"]} attempt(s) this round, {len(entries)} judged in all, '
        f'${row["cost_usd"]:.4f}, {row["tokens"]:,} tokens'
        + (f' · depends on {esc(", ".join(row["depends_on"]))}' if row["depends_on"] else "")
        + (f' · verified at <code>{esc((row["verified_commit"] or "")[:10])}</code> {esc(row["verified_at"] or "")}'
           if row["verified_commit"] and row["status"] == "passing" else "") + "</div>",
    ]
    if row["blocked_reason"]:
        parts.append(f'<p><b>blocked:</b> {esc(row["blocked_reason"])}</p>')
    if figures:
        parts.append(f'<div class="figures">{figures}</div>')
    parts.append(seed_table(seed_columns(state.last_evidence, checks)))
    parts.append(charts(entries, checks))
    parts.append(leaderboard_section(project.repo, row["id"]))
    parts.append("<h4>last verification</h4>" + evidence_rows(state.last_evidence, checks, timeout_s, page_dir))
    parts.append(attempts_section(project.repo, row["id"], entries, attempt_dirs(project.repo, row["id"]), checks,
                                  timeout_s, page_dir))
    parts.append(wandb_links(row["wandb"], project.repo, page_dir))
    parts.append("</div>")
    return "".join(parts)


def phase_section(project: Project, p: dict[str, Any], history: dict[str, list[AttemptEntry]],
                  page_dir: Path) -> str:
    exits = ", ".join(f"{esc(e['check'])}: {esc(e['verdict'])}" for e in p["exit"]) or "none"
    d = p["decision"]
    approval = (f"{esc(d['decision'])} by {esc(d['by'])} at {esc(d['at'])}" + (f" ({esc(d['note'])})" if d["note"] else "")
                if d else ("requested" if p["approval_requested"] else "required" if p["approval_required"] else "not required"))
    features = ("".join(feature_card(project, f, history.get(f["id"], []), page_dir) for f in p["features"])
                or '<p class="muted">no features yet</p>')
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
    out = ['<section id="plots"><h2>Other plots in experiments/</h2>']
    for folder, paths in groups.items():
        readme = folder / "README.md"
        title = folder.relative_to(repo).as_posix()
        out.append(f"<h3>{link(readme, page_dir, title) if readme.is_file() else esc(title)}</h3>")
        out.append('<div class="plots">' + "".join(image(p, p.relative_to(repo).as_posix(), page_dir) for p in paths)
                   + "</div>")
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
    entries, bad = read_attempts(project.repo)
    history: dict[str, list[AttemptEntry]] = {}
    for entry in entries:
        history.setdefault(entry.feature, []).append(entry)
    unreadable = (f'<p style="color:#cf222e">{bad} line(s) of .ralph/attempts.jsonl could not be read (ralph stopped '
                  "while writing?); those attempts are missing below</p>" if bad else "")
    body = [
        f"<h1>{esc(data['project'])}</h1>",
        f"<p>{esc(data['description'])}</p>" if data["description"] else "",
        f'<p class="muted">commit <code>{esc((data["commit"] or "none")[:10])}</code> · generated {esc(data["generated_at"])}'
        f' · {t["passing"]}/{t["features"]} features passing, {t["blocked"]} blocked, {t["attempts"]} attempts, '
        f'${t["cost_usd"]:.2f}</p>',
        problem,
        f"<nav>{nav}</nav>",
        unreadable,
        *(phase_section(project, p, history, page_dir) for p in data["phases"]),
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
