"""The results page's record of a feature's attempts: every attempt, failed ones too, with its verdict, cost,
time and figures, and under it its checks, its diff (git/kept.py), the plots its checks wrote and its
transcript. All of it is what an agent produced, so all of it is escaped (html.esc)."""

from __future__ import annotations

from pathlib import Path

from harness.books.attempts import AttemptEntry
from harness.books.git.kept import Diff, attempt_diff
from harness.books.layout import ralph_dir
from harness.books.records import Evidence
from harness.plan.prd import Check
from harness.run.prompt import describe_check
from harness.views.html import badge, esc, image, link, table
from harness.views.results import seed_columns

PAGE_DIFF_BYTES = 60_000  # of each attempt's patch on the page; `ralph show F --attempt N --diff` shows more
OPEN_LAST = 3  # the latest attempts' details are open, and their plots embedded; older ones fold, plots linked


def evidence_rows(evidence: list[Evidence], checks: list[Check], timeout_s: float, page_dir: Path) -> str:
    """A verification's checks: verdict, detail, the tail of a failing check's output, time, log."""
    rows = []
    for e in evidence:
        log = link(Path(e.log), page_dir, "log") if e.log and Path(e.log).is_file() else ""
        tail = "" if e.passed or not e.output_tail.strip() else f"<pre>{esc(e.output_tail.strip()[-1500:])}</pre>"
        rows.append([esc(e.check), badge(e.verdict), f"{esc(e.detail)}{tail}", f"{e.duration_s:.1f}s", log])
    if not rows:
        planned = "".join(f"<li><code>{esc(describe_check(c, timeout_s)[2:])}</code></li>" for c in checks)
        return f'<p class="muted">not verified yet; judged by:</p><ul>{planned}</ul>'
    return table(["check", "verdict", "detail", "time", ""], rows, numeric=[3])


def diff_html(diff: Diff) -> str:
    """git's stat and the patch, line by line escaped and coloured."""
    if diff.missing:
        return f'<p class="muted">no diff: {esc(diff.missing)}</p>'
    classes = (("diff --git", "head"), ("+++", "head"), ("---", "head"), ("+", "add"), ("-", "del"), ("@@", "hunk"))
    lines = []
    for line in diff.patch.splitlines():
        kind = next((c for prefix, c in classes if line.startswith(prefix)), "")
        lines.append(f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line))
    cut = (f'<p class="muted">the patch is cut at {PAGE_DIFF_BYTES:,} bytes; <code>ralph show … --diff</code> or '
           "<code>git diff-tree -p</code> on the commit shows all of it</p>" if diff.cut else "")
    return (f"<pre>{esc(diff.stat) or '(no changes)'}</pre>"
            + (f'<pre class="diff">{chr(10).join(lines)}</pre>' if lines else "") + cut)


def _figures(entry: AttemptEntry, checks: list[Check]) -> str:
    """Each per-seed quantity of the attempt as mean ± std (n)."""
    out = []
    for col in seed_columns(entry.evidence, checks):
        if col.mean is None or col.role == "report":
            continue
        spread = f" ± {col.std:.2g}" if col.std is not None else ""
        out.append(f"{esc(col.label)} = {col.mean:.4g}{spread} (n = {len(col.values)})")
    return "<br>".join(out)


def _attempt_details(project_repo: Path, feature_id: str, number: int, entry: AttemptEntry | None,
                     run_dir: Path | None, checks: list[Check], timeout_s: float, page_dir: Path, is_open: bool) -> str:
    head = f"attempt {number}" + (f": {entry.status}" if entry else ": not judged (interrupted, or recorded "
                                                                        "before the history of attempts began)")
    parts = [f'<details id="{esc(feature_id)}-attempt-{number}"{" open" if is_open else ""}><summary>'
             f"<b>{esc(head)}</b></summary>"]
    if entry is not None:
        parts.append("<h4>checks</h4>" + evidence_rows(entry.evidence, checks, timeout_s, page_dir))
        where = (f"commit <code>{esc(entry.commit[:10])}</code>" + ("" if entry.passed else
                 f" (kept off the branch: <code>git show {esc(entry.commit[:10])}</code>)") if entry.commit
                 else f"its tree was not kept: {esc(entry.kept or 'unknown')}")
        parts.append(f"<h4>diff</h4><p class=\"muted\">{where}</p>"
                     + diff_html(attempt_diff(project_repo, entry.base, entry.commit, PAGE_DIFF_BYTES)))
        plots = [ralph_dir(project_repo) / p for p in entry.plots]
        if plots:
            parts.append("<h4>plots its checks wrote</h4><div class=\"plots\">"
                         + "".join(image(p, p.name.replace("__", "/"), page_dir, embed=is_open)
                                   for p in plots if p.is_file())
                         + "</div>")
    if run_dir is not None:
        files = [link(run_dir / n, page_dir, n) for n in ("transcript.jsonl", "prompt.md") if (run_dir / n).is_file()]
        parts.append(f"<p>agent: {' · '.join(files)} · <code>ralph show {esc(feature_id)} --attempt {number}"
                     "</code></p>")
    parts.append("</details>")
    return "".join(parts)


def attempts_section(project_repo: Path, feature_id: str, entries: list[AttemptEntry], run_dirs: dict[int, Path],
                     checks: list[Check], timeout_s: float, page_dir: Path) -> str:
    """The table of every attempt (judged or only started), then each one's details."""
    by_number = {e.attempt: e for e in entries}
    numbers = sorted(set(by_number) | set(run_dirs))
    if not numbers:
        return ""
    rows = []
    for n in numbers:
        e = by_number.get(n)
        if e is None:
            rows.append([f'<a href="#{esc(feature_id)}-attempt-{n}">{n}</a>', "", badge("not judged"), "", "", "", "",
                         "", "", ""])
            continue
        agent = esc(" ".join(x for x in (e.agent, e.model) if x) + (f" ({e.agent_status})" if e.agent_status else ""))
        rows.append([f'<a href="#{esc(feature_id)}-attempt-{n}">{n}</a>', esc(e.at), badge(e.status), agent,
                     f"${e.cost_usd:.4f}", f"{e.tokens:,}", f"{e.agent_s:.1f}s" if e.agent_s is not None else "",
                     f"{e.checks_s:.1f}s", _figures(e, checks), f"<code>{esc((e.commit or '')[:10])}</code>"])
    head = ["attempt", "recorded", "verdict", "agent", "cost", "tokens", "agent time", "checks time", "figures",
            "commit"]
    details = "".join(_attempt_details(project_repo, feature_id, n, by_number.get(n), run_dirs.get(n), checks,
                                       timeout_s, page_dir, n in numbers[-OPEN_LAST:]) for n in numbers)
    return f"<h4>attempts</h4>{table(head, rows, numeric=[4, 5, 6, 7])}{details}"
