"""`ralph`: the research harness CLI. Thin: parse arguments, call library code, render with rich.

Adding a command: decorate a function with `@command()`; use the `Repo`/`PrdPath` option types and
`open_project()`; raise a `RalphError` for anything a person must fix (it becomes a message and
the error's exit code, never a traceback).
"""

from __future__ import annotations

import functools
import getpass
import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import git
import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.approval import approve as approve_phase
from harness.approval import reject as reject_phase
from harness.agents import AgentConfigError, describe_kinds, make_agent
from harness.checks import Evidence
from harness.errors import ExitCode, RalphError
from harness.fileio import atomic_write_text
from harness.ledger import RepoLock
from harness.live import RunView
from harness.loop import Interrupted, PhaseRunner, preview
from harness.preflight import preflight
from harness.prd import Check, Phase, decode_json, import_snarktank, json_schema, load_prd, prd_warnings, save_prd
from harness.progress import ProgressLog
from harness.sandbox import resolve_sandbox
from harness.settings import load_settings
from harness.status import board, render_board, render_markdown
from harness.templates import TEMPLATES, init_project
from harness.verify import Project, select, verify_exit, verify_feature

app = typer.Typer(
    help="ralph drives a coding agent through a research plan (PRD.json); the harness runs the checks, "
    "decides what passes, logs to progress.txt, commits, and stops for human approval between phases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

Repo = Annotated[Path, typer.Option("--repo", "-C", help="Repository to work in.", file_okay=False)]
PrdPath = Annotated[Optional[Path], typer.Option("--prd", help="PRD file.", show_default="<repo>/PRD.json", dir_okay=False)]

F = TypeVar("F", bound=Callable[..., Any])


def command(name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register a command; a `RalphError` it raises is printed and becomes its exit code."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except RalphError as e:
                err_console.print(f"[bold red]error:[/] {escape(str(e))}")
                raise typer.Exit(int(e.exit_code)) from None

        app.command(name, **kwargs)(wrapper)
        return fn

    return register


def open_project(repo: Path, prd: Path | None) -> Project:
    return Project.open(repo, prd)


def default_actor(repo: Path) -> str:
    """Who is acting: git's user.name, else the login name."""
    try:
        name = git.Repo(repo).config_reader().get_value("user", "name", default="")
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        name = ""
    return str(name) or getpass.getuser()


class LiveChecks:
    """Live display of running checks (implements `harness.checks.Reporter`)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.label = ""
        self.task: TaskID | None = None

    def started(self, check: Check, index: int, total: int) -> None:
        self.task = self.progress.add_task(f"{self.label} · {check.name} ({index + 1}/{total})", total=None, last="")

    def line(self, text: str) -> None:
        if self.task is not None and text.strip():
            self.progress.update(self.task, last=text.strip()[:100])

    def finished(self, evidence: Evidence) -> None:
        if self.task is not None:
            style = "green" if evidence.passed else "red"
            self.progress.update(self.task, total=1, completed=1, last=f"[{style}]{evidence.verdict}[/]: "
                                 f"{escape(evidence.detail[:100])}")
            self.task = None


def live_progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    TextColumn("[dim]{task.fields[last]}"), console=console, transient=False)


def evidence_table(rows: list[tuple[str, Evidence]]) -> Table:
    table = Table(title="verification", show_lines=False)
    for col in ("subject", "check", "verdict", "detail", "time"):
        table.add_column(col, justify="right" if col == "time" else "left")
    for subject, e in rows:
        style = "green" if e.passed else "red"
        table.add_row(subject, e.check, Text(e.verdict, style), e.detail, f"{e.duration_s:.1f}s")
    return table


# ---------------------------------------------------------------- commands


@command()
def validate(
    path: Annotated[Optional[Path], typer.Argument(help="PRD file.", show_default="<repo>/PRD.json")] = None,
    repo: Repo = Path("."),
) -> None:
    """Check a PRD file; lists every problem with its JSON path (exit 2 when invalid)."""
    target = path or repo / "PRD.json"
    prd = load_prd(target)
    checks = sum(len(f.verify) for f in prd.features) + sum(len(p.entry) + len(p.exit) for p in prd.phases)
    console.print(f"[green]✓[/] {escape(str(target))}: {len(prd.phases)} phases, {len(prd.features)} features, "
                  f"{checks} checks")
    for w in prd_warnings(prd, repo):
        console.print(f"[yellow]warning:[/] {escape(w)}")


@command()
def schema(out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to a file.")] = None) -> None:
    """Print the JSON Schema of PRD.json (point your editor's "$schema" at it)."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    if out:
        atomic_write_text(out, text)
        console.print(f"wrote {escape(str(out))}")
    else:
        typer.echo(text, nl=False)


@command("import")
def import_(
    src: Annotated[Path, typer.Argument(help="snarktank-style prd.json (userStories).", dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="PRD to write.")] = Path("PRD.json"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")] = False,
) -> None:
    """Convert a snarktank-style prd.json into a ralph PRD with one phase (stories ordered by priority)."""
    if not src.is_file():
        raise RalphError(f"{src} not found")
    prd = import_snarktank(decode_json(src.read_text(encoding="utf-8"), str(src)), str(src))
    if out.exists() and not force:
        raise RalphError(f"{out} already exists; nothing was written. Use --force to overwrite or --out elsewhere.")
    save_prd(prd, out)
    console.print(f"[green]✓[/] wrote {escape(str(out))}: 1 phase, {len(prd.features)} features")
    for w in prd_warnings(prd):
        console.print(f"[yellow]warning:[/] {escape(w)}")


Template = Enum("Template", {name.replace("-", "_"): name for name in TEMPLATES}, type=str)  # type: ignore[misc]


@command()
def init(
    repo: Repo = Path("."),
    template: Annotated[Template, typer.Option("--template", "-t", help="PRD to start from.")] = Template["blank"],
    force: Annotated[bool, typer.Option("--force", help="Overwrite PRD.json and DESIGN-PRINCIPLES.md.")] = False,
) -> None:
    """Set up a (new or existing) git repository for ralph."""
    written = init_project(repo, template.value, force=force)
    console.print(f"[green]✓[/] {escape(str(repo))}: wrote {escape(', '.join(written))}")
    console.print("next: edit PRD.json, then `ralph validate` and `ralph status`")


@command()
def verify(
    ids: Annotated[Optional[list[str]], typer.Argument(help="Feature ids to verify.", show_default=False)] = None,
    phase: Annotated[Optional[int], typer.Option("--phase", help="All features of a phase, and its exit checks.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every feature and every phase's exit checks.")] = False,
    commit: Annotated[bool, typer.Option("--commit", help="Commit each feature that passes.")] = False,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Run checks now, record the evidence (state, PRD passes, progress.txt); exit 1 if any fails."""
    project = open_project(repo, prd)
    features, phases = select(project.prd, ids or [], phase, all_)
    rows: list[tuple[str, Evidence]] = []
    unverifiable = [f.id for f in features if not f.verify]
    with RepoLock(project.repo, "ralph verify"), live_progress() as progress:
        live = LiveChecks(progress)
        for f in features:
            live.label = f.id
            verdict = verify_feature(project, f, commit=commit, reporter=live)
            rows += [(f.id, e) for e in verdict.evidence]
            if verdict.commit:
                progress.console.print(f"committed {f.id} as {verdict.commit.sha[:10]}"
                                       + (f" ({len(verdict.commit.skipped)} files left out)"
                                          if verdict.commit.skipped else ""))
        for p in phases:
            live.label = f"phase {p.id} exit"
            rows += [(f"phase {p.id}", e) for e in verify_exit(project, p, reporter=live)]
    console.print(evidence_table(rows))
    failed = sum(not e.passed for _, e in rows)
    console.print(f"[red]{failed} of {len(rows)} checks failed[/]" if failed else f"[green]all {len(rows)} checks passed[/]")
    if unverifiable:
        console.print(f"[red]{escape(', '.join(unverifiable))}: no checks in PRD.json, so not passing[/]")
    if failed or unverifiable:
        raise typer.Exit(ExitCode.FAILED)


@command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    write: Annotated[bool, typer.Option("--write", help="Also render docs/STATUS.md.")] = False,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """The board: phases, features, attempts, key figures, approvals, blockers."""
    project = open_project(repo, prd)
    data = board(project)
    if write:
        path = project.repo / "docs" / "STATUS.md"
        atomic_write_text(path, render_markdown(data))
        err_console.print(f"wrote {escape(str(path))}")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        console.print(render_board(data))


@command()
def approve(
    phase: Annotated[int, typer.Argument(help="Phase id.")],
    by: Annotated[str, typer.Option("--by", help="Who approves (recorded).")],
    note: Annotated[str, typer.Option("--note", help="Why, or what to watch.")] = "",
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Approve a phase whose exit criteria pass (refused with the failing checks otherwise, exit 1)."""
    project = open_project(repo, prd)
    with RepoLock(project.repo, "ralph approve"), live_progress() as progress:
        live = LiveChecks(progress)
        live.label = f"phase {phase} exit"
        decision = approve_phase(project, phase, by, note, reporter=live)
    console.print(f"[green]✓[/] phase {phase} approved by {escape(by)} at {decision.commit and decision.commit[:10]}"
                  f" (tag ralph/phase-{phase}-approved)")


@command()
def reject(
    phase: Annotated[int, typer.Argument(help="Phase id.")],
    reason: Annotated[str, typer.Option("--reason", help="What must change (recorded).")],
    by: Annotated[Optional[str], typer.Option("--by", help="Who rejects.", show_default="git user.name")] = None,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Reject a phase, with the reason recorded in state, progress.txt and a git tag."""
    project = open_project(repo, prd)
    who = by or default_actor(project.repo)
    with RepoLock(project.repo, "ralph reject"):
        reject_phase(project, phase, who, reason)
    console.print(f"phase {phase} rejected by {escape(who)}: {escape(reason)} (tag ralph/phase-{phase}-rejected)")


@command()
def log(
    tail: Annotated[Optional[int], typer.Option("--tail", "-n", help="Only the last N entries.", min=1)] = None,
    accept_edits: Annotated[bool, typer.Option("--accept-edits", help="Accept outside edits to progress.txt "
                                               "as the new baseline (logged as its own entry).")] = False,
    by: Annotated[Optional[str], typer.Option("--by", help="Who accepts.", show_default="git user.name")] = None,
    repo: Repo = Path("."),
) -> None:
    """Show progress.txt (the harness-written log)."""
    progress = ProgressLog(repo)
    if accept_edits:
        with RepoLock(repo, "ralph log --accept-edits"):
            accepted = progress.accept_edits(by or default_actor(repo))
        console.print(f"[green]✓[/] accepted: {escape(accepted or 'no outside edits were pending')}")
        return
    problem = progress.problem()
    if problem:
        err_console.print(f"[bold red]warning:[/] {escape(problem)}; ralph will not append until "
                          "`ralph log --accept-edits`")
    blocks = progress.blocks()
    if not blocks:
        console.print("progress.txt has no entries yet")
    for block in blocks[-tail:] if tail else blocks:
        head, _, body = block.partition("\n")
        console.print(Text(head, "bold cyan"))
        console.print(Text(body.rstrip("\n")), highlight=False)
        console.print()


class SandboxKind(str, Enum):
    none = "none"
    bwrap = "bwrap"


def ask_approval(phase: Phase, summary: str) -> tuple[str, str, str]:
    """The interactive gate: show the phase summary, ask approve / reject / stop."""
    console.print(Panel(escape(summary), title=f"phase {phase.id} complete: {escape(phase.name)}"))
    choice = Prompt.ask("approve, reject, or stop (decide later with `ralph approve`)",
                        choices=["approve", "reject", "stop"], default="stop", console=console)
    if choice == "stop":
        return choice, "", ""
    name = Prompt.ask("your name (recorded)", default=default_actor(Path(".")), console=console)
    text = Prompt.ask("note" if choice == "approve" else "reason (what must change)", default="", console=console)
    return choice, name, text


@command()
def run(
    phase: Annotated[int, typer.Option("--phase", "-p", help="Phase to work on.")],
    feature: Annotated[Optional[str], typer.Option("--feature", help="Only this feature (a blocked one gets "
                                                   "another round).")] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help=f"{describe_kinds()}. See docs/agents.md.",
                                                 metavar="KIND", show_default="anthropic")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model name for the agent.")] = None,
    agent_cmd: Annotated[Optional[str], typer.Option("--agent-cmd", help="command: a preset or a template with "
                                                     "{prompt_file}; replay: the script path.")] = None,
    agent_env: Annotated[Optional[list[str]], typer.Option("--agent-env", help="An environment variable the agent "
                                                           "CLI may see although it looks secret (repeatable; a "
                                                           "known CLI's own keys pass anyway). Checks never see it.",
                                                           metavar="NAME", show_default=False)] = None,
    max_iterations: Annotated[Optional[int], typer.Option(help="Agent attempts in this run.", min=1,
                                                          show_default="10")] = None,
    max_attempts: Annotated[Optional[int], typer.Option(help="Attempts per feature before it is blocked.", min=1,
                                                        show_default="PRD defaults.max_attempts")] = None,
    attempt_timeout: Annotated[Optional[float], typer.Option(help="Seconds per attempt; the agent's process group "
                                                             "is killed after.", show_default="PRD defaults")] = None,
    max_turns: Annotated[Optional[int], typer.Option(help="Agent turns per attempt.", min=1,
                                                     show_default="50")] = None,
    max_cost_usd: Annotated[Optional[float], typer.Option(help="USD for the whole run.", show_default="10")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="Tokens for the whole run.",
                                                      show_default="5000000")] = None,
    max_hours: Annotated[Optional[float], typer.Option(help="Wall clock for the whole run.",
                                                       show_default="8")] = None,
    sandbox: Annotated[Optional[SandboxKind], typer.Option(help="bwrap: agent commands and checks see a read-only "
                                                           "filesystem outside the repo and no network.",
                                                           show_default="none")] = None,
    reset_on_fail: Annotated[Optional[bool], typer.Option("--reset-on-fail/--keep-on-fail",
                                                          help="Restore the tree after a failed attempt instead of "
                                                          "keeping it for the next.", show_default="keep")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the prompts and checks; run nothing.")] = False,
    no_input: Annotated[bool, typer.Option("--no-input", help="Never prompt: write an approval request and "
                                           "exit 3 instead.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Approve the phase automatically when its exit criteria "
                                      "pass (recorded as such).")] = False,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Work through a phase: one agent attempt at a time, verified by the harness, committed when it passes.

    Exit codes: 0 done, 2 usage error, 3 awaiting approval, 4 budget exhausted, 5 blocked features or
    failing exit checks, 6 entry criteria not met, 130 interrupted (state saved; run again to resume).
    Defaults also come from `\\[tool.ralph]` in pyproject.toml and `.ralph/config.toml`.
    """
    project = open_project(repo, prd)
    settings = load_settings(project.repo, {
        "agent": agent, "model": model, "agent_cmd": agent_cmd, "agent_env": agent_env or None,
        "max_iterations": max_iterations,
        "max_attempts": max_attempts, "attempt_timeout_s": attempt_timeout, "max_turns": max_turns,
        "max_cost_usd": max_cost_usd, "max_tokens": max_tokens, "max_hours": max_hours,
        "sandbox": sandbox.value if sandbox else None, "reset_on_fail": reset_on_fail,
    })
    try:
        backend = make_agent(settings.agent, model=settings.model, agent_cmd=settings.agent_cmd,
                             agent_env=tuple(settings.agent_env))
    except AgentConfigError as e:
        raise RalphError(str(e)) from None
    if dry_run:
        typer.echo(preview(project, phase, settings, feature))
        template = getattr(backend, "template", None)
        typer.echo(f"agent: {backend.name}" + (f" runs: {template}" if template else f", model {backend.model}"))
        return
    chosen, note = resolve_sandbox(settings.sandbox)
    if note:
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    settings = settings.model_copy(update={"sandbox": chosen})
    err_console.print(f"preflight: {escape(preflight(backend, project.repo, chosen))}")
    interactive = console.is_terminal and not no_input and not yes
    with RepoLock(project.repo, "ralph run"):
        with RunView(console, f"{phase}: {project.prd.phase(phase).name}") as view:
            runner = PhaseRunner(project, phase, backend, settings, view, feature_id=feature,
                                 ask=ask_approval if interactive else None, auto_approve=yes)
            try:
                outcome = runner.run()
            except KeyboardInterrupt:  # outside an attempt (the loop handles those): state is already saved
                raise Interrupted("interrupted; state is saved and `ralph run` resumes where it stopped") from None
            finally:
                if runner.entered:
                    view.say(runner.summary())
    style = "green" if outcome.code == ExitCode.OK else "yellow" if outcome.code == ExitCode.AWAITING_APPROVAL else "red"
    console.print(f"[{style}]{escape(outcome.message)}[/]")
    for fid, reason in outcome.blocked.items():
        console.print(f"  [red]blocked[/] {fid}: {escape(reason)}")
    raise typer.Exit(int(outcome.code))



def main() -> None:
    app()
