"""`ralph show`: one attempt rendered in the terminal, and a failing check with its output.

An attempt's files are `.ralph/runs/<ts>-<feature>-<n>/` (prompt.md, transcript.jsonl, written
by the loop and the agent backends); the checks that judged it are the progress.txt entry of
that attempt and its record in the history of attempts (books/attempts.py: evidence with log
paths, cost, time, and the commit holding its tree, from which `--diff` reads what it changed).
Transcripts come in three shapes, all read here: the anthropic backend's `turn` records (content
blocks and tool results), the replay agent's (`action`, `output`), and an agent CLI's own output
(JSON lines or plain text), which is shown as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

from harness.books.attempts import AttemptEntry, read_attempts
from harness.books.layout import RUNS, ralph_dir
from harness.errors import RalphError
from harness.fileio import printable
from harness.judge.safepath import explanation

if TYPE_CHECKING:
    from harness.books.git.kept import Diff
    from harness.books.records import Evidence
    from harness.project import Project

TAIL_LINES = 12
SHORT_CHARS = 2_000  # a tool output or prompt longer than this is cut unless --full
ACTION_CHARS = 300  # a scripted action (a whole file's content) is cut sooner
STAMP = r"\d{4}-\d{2}-\d{2}T\d{6}Z"


def log_path_text(log: str | None, repo: Path) -> str:
    """A check log's path relative to the repository when it lies inside it."""
    if not log:
        return "(no log)"
    path = Path(log)
    try:
        return str(path.resolve().relative_to(repo.resolve()))
    except ValueError:
        return str(path)


def check_output(evidence: Evidence, repo: Path, lines: int = TAIL_LINES) -> RenderableType:
    """A check's command, the last `lines` lines of its output, and where its full log is."""
    parts: list[RenderableType] = []
    if evidence.command:
        parts.append(Text(f"  $ {evidence.command}", "dim"))
    tail = [line for line in evidence.output_tail.rstrip().splitlines() if line.strip()][-lines:]
    if tail:
        parts.append(Text("\n".join("  │ " + line for line in tail)))
    if evidence.kind == "run":
        parts.append(Text(f"  full log: {log_path_text(evidence.log, repo)}", "dim"))
    hint = safe_path_hint(evidence, repo)
    if hint:
        parts.append(Text(f"  hint: {hint}", "yellow"))
    return Group(*parts)


MISSING_MODULE = re.compile(r"No module named '([A-Za-z_][\w.]*)'")


def safe_path_hint(evidence: Evidence, repo: Path) -> str | None:
    """Why a module that is in the repository was not found: checks run with PYTHONSAFEPATH=1
    (judge.executors.seed_runs), so `python train.py` cannot import its neighbour `data.py`."""
    found = MISSING_MODULE.findall(evidence.output_tail) if not evidence.passed else []
    if not found:
        return None
    name = found[-1].split(".")[0]
    scripts = [w for w in (evidence.command or "").split() if w.endswith(".py")]
    folders = dict.fromkeys([repo, *((repo / w).parent for w in scripts)])
    here = next((f / c for f in folders for c in (f"{name}.py", name) if (f / c).exists()), None)
    if here is None:
        return None
    return explanation(name, log_path_text(str(here), repo))


def check_failure(subject: str, evidence: Evidence, repo: Path, lines: int = TAIL_LINES) -> RenderableType:
    """A failing check: what failed and why, then `check_output`."""
    head = Text.assemble((f"{subject} · {evidence.check}", "bold red"), f": {evidence.verdict}, {evidence.detail}")
    return Group(head, check_output(evidence, repo, lines))


@dataclass
class AttemptRecord:
    """Everything recorded about one attempt of one feature."""

    feature: str
    number: int
    run_dir: Path
    prompt: str
    transcript: list[dict[str, Any] | str] = field(default_factory=list)  # a str is a non-JSON line
    progress: str | None = None  # the progress.txt block of this attempt
    evidence: list[Evidence] = field(default_factory=list)  # its full evidence: from its history entry, else
    # the ledger's when it is the latest verification
    repo: Path = Path(".")
    entry: AttemptEntry | None = None  # its record in the history of attempts (none before it was kept)


def attempt_dirs(repo: Path, feature_id: str) -> dict[int, Path]:
    """Attempt number -> its run directory (the newest one if a number repeats after a ledger reset)."""
    pattern = re.compile(rf"^{STAMP}-{re.escape(feature_id)}-(\d+)$")
    found: dict[int, Path] = {}
    runs = ralph_dir(repo) / RUNS
    for path in sorted(runs.iterdir()) if runs.is_dir() else []:
        m = pattern.match(path.name)
        if m and path.is_dir() and (path / "prompt.md").is_file():
            found[int(m.group(1))] = path
    return found


def read_transcript(path: Path) -> list[dict[str, Any] | str]:
    if not path.is_file():
        return []
    out: list[dict[str, Any] | str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = line
        out.append(record if isinstance(record, dict) else line)
    return out


def progress_block(project: Project, feature_id: str, number: int) -> str | None:
    """The progress.txt entry recording attempt `number` of `feature_id` (its checks and verdict)."""
    for block in reversed(project.progress.blocks()):
        head = block.split("\n", 1)[0].split(" | ")
        if len(head) >= 3 and head[1] == "attempt" and head[2] == feature_id and f"\nattempt: {number}\n" in block:
            return block
    return None


def find_attempt(project: Project, feature_id: str, number: int | None) -> AttemptRecord:
    dirs = attempt_dirs(project.repo, feature_id)
    if not dirs:
        raise RalphError(f"{feature_id} has no recorded attempts in {project.repo / '.ralph' / 'runs'}; "
                         f"`ralph run --feature {feature_id}` makes one")
    chosen = number if number is not None else max(dirs)
    if chosen not in dirs:
        raise RalphError(f"{feature_id} has no attempt {chosen}; recorded: {', '.join(map(str, sorted(dirs)))}")
    run_dir = dirs[chosen]
    state = project.ledger.feature(feature_id)
    latest = chosen == max(dirs) and state.attempt_serial == chosen
    entry = next((e for e in read_attempts(project.repo, feature_id)[0] if e.attempt == chosen), None)
    return AttemptRecord(
        feature=feature_id, number=chosen, run_dir=run_dir, repo=project.repo,
        prompt=(run_dir / "prompt.md").read_text(encoding="utf-8", errors="replace"),
        transcript=read_transcript(run_dir / "transcript.jsonl"),
        progress=progress_block(project, feature_id, chosen),
        evidence=list(entry.evidence) if entry else list(state.last_evidence) if latest else [],
        entry=entry,
    )


def _short(text: str, full: bool, limit: int = SHORT_CHARS) -> str:
    text = printable(text)  # a transcript holds what the agent wrote: never terminal control sequences
    if full or len(text) <= limit:
        return text
    return text[:limit] + f"\n… {len(text) - limit} more characters (--full shows them)"


def _tool_call(block: dict[str, Any]) -> str:
    params = block.get("input") or {}
    if "command" in params and block.get("name") == "bash":
        return f"$ {params['command']}"
    described = {k: v for k, v in params.items() if k not in ("file_text", "new_str", "old_str")}
    return f"{block.get('name')} {json.dumps(described)}"


def _tool_result_text(result: dict[str, Any]) -> str:
    content = result.get("content", "")
    if isinstance(content, list):
        content = "\n".join(str(c.get("text", c)) if isinstance(c, dict) else str(c) for c in content)
    return str(content)


def _turn(record: dict[str, Any], full: bool) -> list[RenderableType]:
    """One agent turn: what it said, the tools it called and what they returned."""
    usage = record.get("usage") or {}
    tokens = sum(int(usage.get(k) or 0) for k in ("input_tokens", "output_tokens"))
    out: list[RenderableType] = [Rule(f"turn {record.get('turn', '?')}  ({tokens:,} tokens)", align="left",
                                      style="cyan")]
    if "content" in record:  # the anthropic backend: the reply's blocks, then the tool results
        results = iter(record.get("tool_results") or [])
        for block in record.get("content") or []:
            if block.get("type") == "text" and block.get("text", "").strip():
                out.append(Text(_short(block["text"].strip(), full)))
            elif block.get("type") == "tool_use":
                out.append(Text(_tool_call(block), "bold yellow"))
                result = next(results, None)
                if result is not None:
                    style = "red" if result.get("is_error") else "dim"
                    out.append(Text(_short(_tool_result_text(result), full), style))
    else:  # the replay agent: one scripted action and its output
        action = record.get("action")
        if action is not None:
            described = action if isinstance(action, str) else json.dumps(action)
            out.append(Text(_short(described, full, ACTION_CHARS), "bold yellow"))
        output = str(record.get("output") or "")
        if output.strip():
            out.append(Text(_short(output.rstrip(), full), "red" if record.get("is_error") else "dim"))
    return out


def _record(record: dict[str, Any] | str, full: bool) -> list[RenderableType]:
    if isinstance(record, str):
        return [Text(_short(record, full), "dim")] if record.strip() else []
    kind = record.get("type")
    if kind == "turn":
        return _turn(record, full)
    if kind == "start":
        who = " ".join(str(record[k]) for k in ("agent", "model") if record.get(k))
        return [Text(f"agent {who}", "bold")]
    if kind == "note":
        return [Text(f"note: {record.get('text', '')}", "yellow")]
    if kind == "retry":
        return [Text(f"retry after {record.get('wait_s')}s: {record.get('error', '')}", "yellow")]
    if kind == "end":
        usage = record.get("usage") or {}
        error = f", error: {record['error']}" if record.get("error") else ""
        return [Rule(style="cyan"), Text(f"agent ended: {record.get('status')} after {record.get('turns')} turn(s), "
                                         f"${float(usage.get('cost_usd') or 0):.4f}{error}", "bold")]
    return [Text(_short(json.dumps(record), full), "dim")]  # an agent CLI's own JSON event


def entry_line(entry: AttemptEntry) -> str:
    """'failing · $0.0123, 1,234 tokens · agent 12.3s, checks 4.5s · commit 1a2b3c4d5e (kept)'."""
    agent = f"agent {entry.agent_s:.1f}s, " if entry.agent_s is not None else ""
    where = (f"commit {entry.commit[:10]}" + ("" if entry.passed else " (kept: git show it)") if entry.commit
             else f"tree not kept: {entry.kept}")
    return (f"{entry.status} · ${entry.cost_usd:.4f}, {entry.tokens:,} tokens · {agent}checks {entry.checks_s:.1f}s"
            f" · {where}")


def render_diff(diff: Diff) -> RenderableType:
    """An attempt's diff: git's stat, then the patch with added lines green and removed ones red. The patch is
    what the agent wrote: shown as plain text (`printable`: no control sequences, never markup)."""
    if diff.missing:
        return Text(f"no diff: {diff.missing}", "yellow")
    lines = [Text(printable(diff.stat) or "(no changes)", "bold")]
    for line in printable(diff.patch).splitlines():
        style = ("bold" if line.startswith(("diff --git", "+++", "---")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "")
        lines.append(Text(line, style))
    if diff.cut:
        lines.append(Text(f"… the patch is cut at {len(diff.patch.encode()):,} bytes; the whole of it: "
                          "git diff-tree -p (the commit above)", "yellow"))
    return Group(*lines)


def render_attempt(rec: AttemptRecord, *, full: bool = False, diff: bool = False) -> RenderableType:
    """Prompt, turns, tool calls and outputs, checks and verdict of one attempt; with `diff`, what it changed."""
    parts: list[RenderableType] = [
        Text.assemble((f"{rec.feature} attempt {rec.number}", "bold"), f"   {log_path_text(str(rec.run_dir), rec.repo)}"),
    ]
    if rec.entry is not None:
        parts.append(Text(entry_line(rec.entry), "dim"))
    parts.append(Panel(Text(_short(rec.prompt.strip(), full)), title="prompt (system --- attempt)", title_align="left"))
    if not rec.transcript:
        parts.append(Text("no transcript.jsonl in this attempt's directory", "yellow"))
    for record in rec.transcript:
        parts += _record(record, full)
    if rec.progress:
        verdict = re.search(r"^verdict: (.+)$", rec.progress, re.M)
        status = re.search(r"^status: (.+)$", rec.progress, re.M)
        summary = verdict.group(1) if verdict else (status.group(1) if status else "recorded")
        style = "green" if summary == "passing" else "red"
        parts.append(Panel(Text(rec.progress.rstrip()), title=Text.assemble("checks and verdict: ", (summary, style)),
                           title_align="left"))
    else:
        parts.append(Text("no progress.txt entry for this attempt (interrupted before verification?)", "yellow"))
    parts += [check_failure(rec.feature, e, rec.repo) for e in rec.evidence if not e.passed]
    if diff:
        from harness.books.git.kept import Diff, attempt_diff  # GitPython: only for a diff (`ralph status` stays light)

        changes = (attempt_diff(rec.repo, rec.entry.base, rec.entry.commit) if rec.entry is not None
                   else Diff(missing="this attempt is not in the history of attempts (.ralph/attempts.jsonl), which "
                         "began after it"))
        parts += [Rule("diff: what the attempt changed", align="left", style="cyan"), render_diff(changes)]
    elif rec.entry is not None and rec.entry.commit:
        parts.append(Text(f"what it changed: ralph show {rec.feature} --attempt {rec.number} --diff", "dim"))
    return Group(*parts)
