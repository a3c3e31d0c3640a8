"""The status board: phases, features, attempts, key figures, approvals, blockers.

`board()` gathers it as plain data (what `ralph status --json` prints); `render_board` draws it
with rich; `render_markdown` writes it as docs/STATUS.md.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from harness.books.git.repo import head_sha
from harness.books.layout import OPTIMIZE, ralph_dir
from harness.books.ledger import LEGACY_NOTE, FeatureState
from harness.books.records import comparisons, headline_metrics, report_values, unique
from harness.books.requests import pending_request
from harness.errors import RalphError
from harness.fileio import now_iso
from harness.project import Project
from harness.run.phases import exit_results, phase_status

STYLES = {
    "passing": "green", "approved": "bold green", "done": "green", "failing": "red", "rejected": "bold red",
    "blocked": "bold red", "pending": "dim", "not started": "dim", "in progress": "yellow", "running": "yellow",
    "awaiting approval": "bold magenta", "exit checks pending": "cyan", "planned": "dim",
}


def _feature_row(feature_id: str, title: str, fs: FeatureState, depends_on: list[str]) -> dict[str, Any]:
    return {
        "id": feature_id,
        "title": title,
        "status": fs.status,
        "attempts": fs.attempts,
        "metrics": headline_metrics(e for e in fs.last_evidence if e.comparison is None),
        "comparisons": [{"check": label, "verdict": verdict, "summary": found.summary(),
                         **found.model_dump(mode="json")} for label, verdict, found in comparisons(fs.last_evidence)],
        "report": [{"text": v.text(), **v.model_dump(mode="json")} for v in report_values(fs.last_evidence)],
        "failing": [f"{e.check}: {e.detail}" for e in fs.last_evidence if not e.passed],
        "verified_commit": fs.verified_commit,
        "verified_at": fs.verified_at,
        "blocked_reason": fs.blocked_reason,
        "stale_reason": fs.stale_reason,
        "legacy": fs.legacy,
        "depends_on": depends_on,
        "cost_usd": round(fs.cost_usd, 4),
        "tokens": fs.tokens,
        "wandb": [run.model_dump() for run in unique(r for e in fs.last_evidence for r in e.wandb)],
        "jobs": [j.id for j in fs.jobs if not j.done],
    }


def _search_row(project: Project, feature_id: str) -> dict[str, Any]:
    """An optimize feature's search in brief (`ralph leaderboard` shows it whole): {"search": {...}} or {}."""
    if not (ralph_dir(project.repo) / OPTIMIZE / feature_id).is_dir():  # no search: optimize (and git) not loaded
        return {}
    from harness.optimize.board import load_board

    try:
        found = load_board(project.repo, feature_id)
    except RalphError as e:  # the board says so and goes on: one unreadable file must not hide the others
        return {"search": {"trials": 0, "line": f"search: {e}", "ended": False}}
    if found is None:
        return {}
    best, base = found.incumbent, found.baseline
    line = (f"search: {len(found.candidates)} trials, {sum(t.verdict == 'keep' for t in found.candidates)} kept"
            + (f"; best {best.mean:.4g} (trial {best.n}) vs baseline {base.mean:.4g}" if best and base and
               best.mean is not None and base.mean is not None else "")
            + ("" if found.ending is None else "; confirmed" if found.ending.confirmed else "; not confirmed"))
    return {"search": {"trials": len(found.candidates), "line": line, "ended": found.ending is not None}}


def board(project: Project) -> dict[str, Any]:
    """Everything the board shows, JSON-serialisable."""
    prd, ledger = project.prd, project.ledger
    phases = []
    for phase in prd.phases:
        features = [{**_feature_row(f.id, f.title, ledger.feature(f.id), f.depends_on),
                     **_search_row(project, f.id)} for f in prd.features_in_phase(phase.id)]
        ps = ledger.phase(phase.id)
        exit_rows, exit_ok = exit_results(phase, ps)
        decision = ps.decision
        phases.append({
            "id": phase.id,
            "name": phase.name,
            "goal": phase.goal,
            "status": phase_status(features, exit_ok, decision.decision if decision else None, phase.approval),
            "passing": sum(f["status"] == "passing" for f in features),
            "total": len(features),
            "approval_required": phase.approval,
            "decision": decision.model_dump() if decision else None,
            "approval_requested": pending_request(project.repo, phase.id) is not None,
            "exit": exit_rows,
            "features": features,
        })
    all_features = [f for p in phases for f in p["features"]]
    counts = {s: sum(f["status"] == s for f in all_features) for s in ("passing", "failing", "blocked", "pending")}
    return {
        "project": prd.project,
        "description": prd.description,
        "generated_at": now_iso(),
        "commit": head_sha(project.repo),
        "progress_problem": project.progress.problem(),
        "totals": {"features": len(all_features), **counts,
                   "attempts": sum(f["attempts"] for f in all_features),
                   "cost_usd": round(sum(f["cost_usd"] for f in all_features), 4),
                   "tokens": sum(f["tokens"] for f in all_features)},
        "phases": phases,
    }


def _issue(f: dict[str, Any]) -> str:
    """What a person should know about a feature's row: blocker, failing checks, or stale evidence."""
    running = f"checks running as jobs: {', '.join(f['jobs'])} (`ralph jobs`)" if f.get("jobs") else ""
    return f["blocked_reason"] or running or f["stale_reason"] or "; ".join(f["failing"])


def _status_text(f: dict[str, Any]) -> str:
    return f"{f['status']} (legacy)" if f["legacy"] else f["status"]


FIGURE_CHARS = 30  # a figure on the board at most; a longer one loses the middle of its name, never digits


def _fit(line: str, limit: int = FIGURE_CHARS) -> str:
    """`line` in `limit` characters with its value whole (at 22: 'eval.linacc_agg@M5=0.4123' ->
    'eval.li…_agg@M5=0.4123')."""
    if len(line) <= limit:
        return line
    cut = max(line.rfind("="), line.rfind(": "))
    name, value = (line[:cut], line[cut:]) if cut > 0 else (line, "")
    room = limit - len(value) - 1
    if room < 4:
        return line  # the value alone fills the column: shown whole, the column widens
    head = (room + 1) // 2
    return name[:head] + "…" + name[len(name) - (room - head):] + value


def _figure_lines(f: dict[str, Any], *, full: bool) -> list[str]:
    """A feature's key figures: each comparison (in full, or only its difference and p-value: the board names
    it in full under the table), then its report figures (a missing one says so), then the metrics. Short
    (`full` False), each fits FIGURE_CHARS with its number whole."""
    lines = [f["search"]["line"]] if f.get("search") else []
    lines += [f"{c['check']}: {c['summary']}" if full else f"Δ={c['diff']:+.3g} p={c['p_value']:.2g}"
              for c in f.get("comparisons", [])]
    lines += [r["text"] if full or r["value"] is not None else f"{r['name']}: missing" for r in f.get("report", [])]
    lines += [f"{k}={v:.4g}" for k, v in f["metrics"].items()]
    return lines if full else [_fit(line) for line in lines]


def _metrics_text(lines: list[str], limit: int = 3) -> str:
    return "\n".join(lines[:limit]) + (f"\n(+{len(lines) - limit})" if len(lines) > limit else "")


def _decision_text(p: dict[str, Any]) -> str:
    d = p["decision"]
    if d:
        return f"{d['decision']} by {d['by']} at {d['at']}" + (f" ({d['note']})" if d["note"] else "")
    if p["approval_requested"]:
        return f"requested: ralph approve {p['id']} --by NAME"
    return "required" if p["approval_required"] else "not required"


def render_board(data: dict[str, Any]) -> RenderableType:
    t = data["totals"]
    head = Text.assemble(
        (data["project"], "bold"), f"  commit {(data['commit'] or 'none')[:10]}  ",
        (f"{t['passing']}/{t['features']} features passing", "green"),
        f"  {t['blocked']} blocked  {t['attempts']} attempts  ${t['cost_usd']:.2f}",
    )
    parts: list[RenderableType] = [head]
    if data["progress_problem"]:
        parts.append(Text(f"progress.txt: {data['progress_problem']} (ralph log --accept-edits)", "bold red"))
    for p in data["phases"]:
        body: list[RenderableType] = [Text(p["goal"], "italic")] if p["goal"] else []
        if p["features"]:
            table = Table(expand=True, show_edge=False, pad_edge=False, box=None, header_style="bold")
            # Ids, statuses and figures never wrap; the title alone gives way (ellipsis), so the board stays
            # one line per feature plus one per figure, even at 80 columns, and no figure is cut: the figures
            # column is as wide as its longest line, which `_fit` keeps to FIGURE_CHARS with its number whole.
            for col, kw in (("feature", {"no_wrap": True, "style": "bold"}),
                            ("title", {"ratio": 1, "no_wrap": True, "overflow": "ellipsis", "style": "dim"}),
                            ("status", {"no_wrap": True}), ("tries", {"justify": "right"}),
                            ("key figures", {"no_wrap": True}), ("commit", {"no_wrap": True})):
                table.add_column(col, **kw)
            for f in p["features"]:  # Text, never markup: a figure's '[seed=0]' is not a style tag
                table.add_row(
                    Text(f["id"]), Text(f["title"]), Text(_status_text(f), STYLES.get(f["status"], "")),
                    str(f["attempts"]), Text(_metrics_text(_figure_lines(f, full=False))),
                    (f["verified_commit"] or "")[:7],
                )
            body.append(table)
            # Blockers, failing checks and stale evidence go under the table, a full-width line each:
            # a sixth column squeezed them into a few characters per line at 80 columns.
            body += [Text.assemble(f"  {f['id']}: ", (issue, STYLES.get(f["status"], "")), no_wrap=False)
                     for f in p["features"] if (issue := _issue(f))]
            # A comparison's full result (interval, test, n) needs the width of the board.
            body += [Text(f"  {f['id']}: {c['check']}: {c['summary']}", no_wrap=False)
                     for f in p["features"] for c in f["comparisons"]]
            # Report figures in full (a missing one with why), under the table too: the column cuts them short.
            body += [Text(f"  {f['id']}: report: {r['text']}", "" if r["value"] is not None else "yellow",
                          no_wrap=False) for f in p["features"] for r in f["report"]]
            if any(f["legacy"] for f in p["features"]):
                body.append(Text(LEGACY_NOTE, "dim"))
        exits = ", ".join(f"{e['check']}: {e['verdict']}" for e in p["exit"]) or "none"
        footer = Text.assemble(("exit: ", "bold"), exits, ("   approval: ", "bold"), _decision_text(p))
        title = Text.assemble(f"Phase {p['id']}: {p['name']}  ", (p["status"], STYLES.get(p["status"], "")),
                              f"  {p['passing']}/{p['total']}")
        parts.append(Panel(Group(*body, footer), title=title, title_align="left"))
    return Group(*parts)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _wandb_md(runs: list[dict[str, Any]]) -> str:
    """Each run as a link to its page, or offline as its id and local folder."""
    return "<br>".join(f"[{r['id']}]({r['url']})" if r["url"] else
                       f"`{r['id']}` (offline{', `' + r['dir'] + '`' if r['dir'] else ''})" for r in runs)


def render_markdown(data: dict[str, Any]) -> str:
    t = data["totals"]
    out = [
        f"# Status: {data['project']}",
        "",
        f"Generated by `ralph status --write` at {data['generated_at']} on commit `{(data['commit'] or 'none')[:10]}`. "
        f"{t['passing']}/{t['features']} features passing, {t['blocked']} blocked, {t['attempts']} agent attempts, "
        f"${t['cost_usd']:.2f} spent.",
        "",
    ]
    if data["progress_problem"]:
        out += [f"**progress.txt was changed outside ralph:** {data['progress_problem']}", ""]
    for p in data["phases"]:
        out += [f"## Phase {p['id']}: {p['name']} ({p['status']}, {p['passing']}/{p['total']})", ""]
        if p["goal"]:
            out += [p["goal"], ""]
        if p["features"]:
            out += ["| feature | title | status | attempts | key figures | verified at | W&B runs | blocker / failing |",
                    "|---|---|---|---:|---|---|---|---|"]
            out += [
                f"| {f['id']} | {_md(f['title'])} | {_status_text(f)} | {f['attempts']} | {_md(_metrics_text(_figure_lines(f, full=True), 6))}"
                f" | {('`' + f['verified_commit'][:8] + '`') if f['verified_commit'] else ''}"
                f" | {_md(_wandb_md(f['wandb']))} | {_md(_issue(f))} |"
                for f in p["features"]
            ]
            out.append("")
            if any(f["legacy"] for f in p["features"]):
                out += [LEGACY_NOTE + ".", ""]
        exits = ", ".join(f"{e['check']}: {e['verdict']}" for e in p["exit"]) or "none"
        out += [f"Exit checks: {exits}. Approval: {_decision_text(p)}.", ""]
    return "\n".join(out)
