"""`ralph`: the research harness CLI. Thin: parse arguments, call library code, render with rich.

Adding a command: decorate a function with `@command()`; use the `Repo`/`PrdPath` option types and
`open_project()`; raise a `RalphError` for anything a person must fix (it becomes a message and
the error's exit code, never a traceback).
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from harness import __version__
from harness.agents import describe_kinds  # light: backends are imported when built
from harness.books.layout import REPORT, ralph_dir
from harness.errors import ExitCode, RalphError
from harness.plan.templates import TEMPLATE_NAMES
from harness.sandbox import SANDBOX_KINDS

if TYPE_CHECKING:  # the rest loads inside the commands that use it, so `ralph --help` starts fast
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from harness.books.records import Evidence
    from harness.plan.prd import PRD, Check, Phase
    from harness.project import Project
    from harness.settings import RunSettings

app = typer.Typer(
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Plain click help: typer's rich panels label every flag `<bool>` as if it took a value.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

Repo = Annotated[Path, typer.Option("--repo", "-C", help="Repository to work in.", file_okay=False)]
PrdPath = Annotated[Optional[Path], typer.Option("--prd", help="PRD file.", show_default="<repo>/PRD.json", dir_okay=False)]

SandboxChoice = Enum("SandboxChoice", {kind: kind for kind in SANDBOX_KINDS}, type=str)  # --sandbox

F = TypeVar("F", bound=Callable[..., Any])


jobs_app = typer.Typer(no_args_is_help=False, context_settings={"help_option_names": ["-h", "--help"]},
                       rich_markup_mode=None, help="Checks running as jobs on a Ray cluster (docs/cluster.md): list "
                       "them (no subcommand), read their logs, cancel them, wait for and collect them.")
app.add_typer(jobs_app, name="jobs")


def command(name: str | None = None, *, group: typer.Typer = app, **kwargs: Any) -> Callable[[F], F]:
    """Register a command (on `group`); a `RalphError` it raises is printed and becomes its exit code."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except RalphError as e:
                err_console.print(f"[bold red]error:[/] {escape(str(e))}")
                raise typer.Exit(int(e.exit_code)) from None

        group.command(name, **kwargs)(wrapper)
        return fn

    return register


def open_project(repo: Path, prd: Path | None) -> Project:
    from harness.project import Project

    return Project.open(repo, prd)


@contextlib.contextmanager
def locked_project(repo: Path, prd: Path | None, command: str) -> Iterator[Project]:
    """The project, opened holding the repository's lock, after recovering a crashed attempt."""
    from harness.books.layout import IN_FLIGHT
    from harness.books.ledger import RepoLock
    from harness.run.recovery import open_project as open_recovered

    if not ralph_dir(repo).joinpath(IN_FLIGHT).exists():
        open_project(repo, prd)  # a bad repository or PRD is reported before anything is written
    with RepoLock(repo.resolve(), command):
        yield open_recovered(repo, prd)


def default_actor(repo: Path) -> str:
    """Who is acting: git's user.name, else the login name."""
    import getpass

    import git

    try:
        name = git.Repo(repo).config_reader().get_value("user", "name", default="")
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        name = ""
    return str(name) or getpass.getuser()


class LiveChecks:
    """Live display of running checks (implements `harness.judge.checks.Reporter`)."""

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
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    TextColumn("[dim]{task.fields[last]}"), console=console, transient=False)


def evidence_table(rows: list[tuple[str, Evidence]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="verification", show_lines=False)
    for col in ("subject", "check", "verdict", "detail", "time"):
        table.add_column(col, justify="right" if col == "time" else "left")
    for subject, e in rows:
        style = "green" if e.passed else "red"
        # Text, never markup: names and details may hold '[seed=0]' or what an agent's output said
        table.add_row(Text(subject), Text(e.check), Text(e.verdict, style), Text(e.detail), f"{e.duration_s:.1f}s")
    return table


def print_failures(rows: list[tuple[str, Evidence]], repo: Path) -> None:
    """Each failing check with the last lines of its output and the path of its full log."""
    from harness.views.show import check_failure

    for subject, e in rows:
        if not e.passed:
            console.print(check_failure(subject, e, repo))


def print_lint(prd: PRD, repo: Path | None, *, strict: bool) -> int:
    """Print the plan's warnings (with `repo`: protected globs matching nothing there too) and lint
    findings; returns how many findings count as errors."""
    from harness.plan.lint import plan_findings
    from harness.plan.prd import prd_warnings

    findings = plan_findings(prd)
    unchecked = {f.feature for f in findings if f.kind == "no checks"}
    for w in prd_warnings(prd, repo):
        if w.split(":", 1)[0] not in unchecked:  # the lint says the same, with the fix
            console.print(f"[yellow]warning:[/] {escape(w)}")
    label = "[bold red]error:[/]" if strict else "[yellow]warning:[/]"
    for f in findings:
        console.print(f"{label} {escape(f.message)}")
    for hint in dict.fromkeys(f.hint for f in findings):
        console.print(f"  [dim]{escape(hint)}[/]")
    return len(findings) if strict else 0


def print_safe_path(prd: PRD, repo: Path) -> None:
    """Warn about checks that cannot import the repository's own modules under PYTHONSAFEPATH=1, asking the
    Python the checks will use (judge/safepath.py); nothing when `repo` is no repository ralph can read."""
    from harness.judge.safepath import safe_path_warnings
    from harness.settings import SettingsError, check_python, load_settings

    if not (repo / ".git").exists():
        return
    try:
        python = check_python(repo, load_settings(repo).python).executable
    except SettingsError:
        return
    for warning in safe_path_warnings(prd, repo, python):
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ralph {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", "-V", help="Print the version and exit.",
                                          callback=version_callback, is_eager=True)] = False,
) -> None:
    """ralph drives a coding agent through a research plan (PRD.json); the harness runs the checks, decides
    what passes, logs to progress.txt, commits, and stops for human approval between phases.

    Start with `ralph init` in a git repository, then `ralph validate`, `ralph status` and `ralph run --dry-run`.
    """


# ---------------------------------------------------------------- commands


@command()
def validate(
    path: Annotated[Optional[Path], typer.Argument(help="PRD file.", show_default="<repo>/PRD.json")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Features whose checks only prove that files exist "
                                         "(or no checks at all), and statistical gates that pass noise too often, "
                                         "are errors (exit 2), not warnings.")] = False,
    sandbox: Annotated[Optional[SandboxChoice], typer.Option(help="The sandbox the plan will run under: with none, "
                                                           "an optimize holdout is refused unless the plan "
                                                           "acknowledges it is not enforced.",
                                                           show_default="the run settings' sandbox")] = None,
    repo: Repo = Path("."),
) -> None:
    """Check a PRD file; lists every problem with its JSON path (exit 2 when invalid), and features whose
    checks run no code and gate no metric."""
    from harness.plan.prd import PRDError, load_prd, unenforced_holdouts
    from harness.run.session import with_sandbox
    from harness.settings import load_settings

    target = path or repo / "PRD.json"
    prd = load_prd(target)
    if any(f.optimize and f.optimize.holdout for f in prd.features):
        settings = load_settings(repo, {"sandbox": sandbox.value if sandbox else None})
        if problems := unenforced_holdouts(prd, with_sandbox(settings)[0].sandbox):
            raise PRDError(str(target), problems)
    checks = sum(len(f.verify) for f in prd.features) + sum(len(p.entry) + len(p.exit) for p in prd.phases)
    console.print(f"[green]✓[/] {escape(str(target))}: {len(prd.phases)} phases, {len(prd.features)} features, "
                  f"{checks} checks")
    errors = print_lint(prd, repo, strict=strict)
    print_safe_path(prd, repo)
    if errors:
        raise typer.Exit(ExitCode.USAGE)


@command()
def schema(out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to a file.")] = None) -> None:
    """Print the JSON Schema of PRD.json (point your editor's "$schema" at it)."""
    from harness.fileio import atomic_write_text
    from harness.plan.prd import json_schema

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
    from harness.plan.prd import decode_json, import_snarktank, save_prd

    if not src.is_file():
        raise RalphError(f"{src} not found")
    prd = import_snarktank(decode_json(src.read_text(encoding="utf-8"), str(src)), str(src))
    if out.exists() and not force:
        raise RalphError(f"{out} already exists; nothing was written. Use --force to overwrite or --out elsewhere.")
    save_prd(prd, out)
    console.print(f"[green]✓[/] wrote {escape(str(out))}: 1 phase, {len(prd.features)} features")
    print_lint(prd, None, strict=False)


Template = Enum("Template", {name.replace("-", "_"): name for name in TEMPLATE_NAMES}, type=str)  # type: ignore[misc]


@command()
def init(
    repo: Repo = Path("."),
    template: Annotated[Template, typer.Option("--template", "-t", help="PRD to start from.")] = Template["blank"],
    force: Annotated[bool, typer.Option("--force", help="Overwrite PRD.json and DESIGN-PRINCIPLES.md.")] = False,
) -> None:
    """Set up a (new or existing) git repository for ralph."""
    from harness.books.init import init_project
    from harness.plan.prd import load_prd

    result = init_project(repo, template.value, force=force)
    console.print(f"[green]✓[/] {escape(str(repo))}: wrote {escape(', '.join(result.written))}")
    for glob in result.unprotected:
        console.print(f"[yellow]note:[/] '{escape(glob)}' is not protected yet: nothing in the repository matches "
                      "it, so the agent may create it. Once it holds what judges the plan (tests, evaluation code), add it back to "
                      "defaults.protected in PRD.json so no agent can weaken them.")
    print_lint(load_prd(repo / "PRD.json"), repo, strict=False)
    console.print("next: edit PRD.json, then `ralph validate` and `ralph run --dry-run`; commit the plan before the "
                  "first `ralph run` (`git add -A && git commit -m plan`: .gitignore now keeps .venv/ and run "
                  "outputs out)")


@command()
def verify(
    ids: Annotated[Optional[list[str]], typer.Argument(help="Feature ids to verify.", show_default=False)] = None,
    phase: Annotated[Optional[int], typer.Option("--phase", help="All features of a phase, and its exit checks.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every feature and every phase's exit checks.")] = False,
    commit: Annotated[bool, typer.Option("--commit", help="Commit each feature that passes.")] = False,
    sandbox: Annotated[Optional[SandboxChoice], typer.Option(help="Where the checks run (they run the agent's "
                                                           "code): as for `ralph run`; default [tool.ralph] "
                                                           "sandbox, else auto.", show_default=False)] = None,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Run checks now, record the evidence (state, PRD passes, progress.txt); exit 1 if any fails.

    The checks run on a clean checkout of what would be committed (ignored files left out), in the sandbox
    `ralph run` would use."""
    from harness.judge.verify import select, verify_exit, verify_feature
    from harness.sandbox.environment import Environment
    from harness.settings import load_settings

    environment = Environment(sandbox.value if sandbox else load_settings(repo).sandbox)
    if environment.note:
        console.print(f"[bold red]{escape(environment.note)}[/]")
    with locked_project(repo, prd, "ralph verify") as project, live_progress() as progress:
        project.environment = environment
        features, phases = select(project.prd, ids or [], phase, all_)
        rows: list[tuple[str, Evidence]] = []
        unverifiable = [f.id for f in features if not f.verify]
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
    print_failures(rows, project.repo)
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
    """The board: phases, features, attempts, key figures, approvals, blockers; failing checks with their
    last output lines and log."""
    from harness.fileio import atomic_write_text
    from harness.views.status import board, render_board, render_markdown

    project = open_project(repo, prd)
    data = board(project)
    data["python"] = checks_python(project.repo)
    if write:
        path = project.repo / "docs" / "STATUS.md"
        atomic_write_text(path, render_markdown(data))
        err_console.print(f"wrote {escape(str(path))}")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        console.print(render_board(data), soft_wrap=False)  # panels wrap their lines to the terminal
        console.print(f"checks use Python: {escape(data['python'])}")
        print_failures([(f.id, e) for f in project.prd.features for e in project.ledger.feature(f.id).last_evidence]
                       + [(f"phase {p.id}", e) for p in project.prd.phases for e in project.ledger.phase(p.id).exit_evidence],
                       project.repo)


def checks_python(repo: Path) -> str:
    """Which Python the checks use, and why (settings.check_python), or why that cannot be said."""
    from harness.settings import SettingsError, check_python, load_settings

    try:
        return check_python(repo, load_settings(repo).python).describe()
    except SettingsError as e:
        return f"unknown: {e}"


@command()
def approve(
    phase: Annotated[int, typer.Argument(help="Phase id.")],
    by: Annotated[str, typer.Option("--by", help="Who approves (recorded).")],
    note: Annotated[str, typer.Option("--note", help="Why, or what to watch.")] = "",
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Approve a phase whose exit criteria pass (refused with the failing checks otherwise, exit 1)."""
    from harness.books.ledger import RepoLock
    from harness.run.approval import approve as approve_phase

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
    from harness.books.ledger import RepoLock
    from harness.run.approval import reject as reject_phase

    project = open_project(repo, prd)
    who = by or default_actor(project.repo)
    with RepoLock(project.repo, "ralph reject"):
        reject_phase(project, phase, who, reason)
    console.print(f"phase {phase} rejected by {escape(who)}: {escape(reason)} (tag ralph/phase-{phase}-rejected)")


@command()
def unblock(
    feature: Annotated[str, typer.Argument(help="Feature id.")],
    by: Annotated[Optional[str], typer.Option("--by", help="Who lifts it.", show_default="git user.name")] = None,
    note: Annotated[str, typer.Option("--note", help="Why (recorded).")] = "",
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Lift a feature's block: the next `ralph run` gives it a new round of attempts (recorded in progress.txt).

    A block whose cause is gone lifts by itself: a dependency that now passes, or checks changed in PRD.json."""
    from harness.run.blocks import unblock as unblock_feature

    with locked_project(repo, prd, "ralph unblock") as project:
        who = by or default_actor(project.repo)
        reason = unblock_feature(project, feature, by=who, note=note)
    console.print(f"{escape(feature)} unblocked by {escape(who)} (was: {escape(reason)}); `ralph run` works on it")


@command()
def log(
    tail: Annotated[Optional[int], typer.Option("--tail", "-n", help="Only the last N entries.", min=1)] = None,
    accept_edits: Annotated[bool, typer.Option("--accept-edits", help="Accept outside edits to progress.txt "
                                               "as the new baseline (logged as its own entry).")] = False,
    by: Annotated[Optional[str], typer.Option("--by", help="Who accepts.", show_default="git user.name")] = None,
    repo: Repo = Path("."),
) -> None:
    """Show progress.txt (the harness-written log)."""
    from rich.text import Text

    from harness.books.ledger import RepoLock
    from harness.books.progress import ProgressLog

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




def ask_approval(phase: Phase, summary: str) -> tuple[str, str, str]:
    """The interactive gate: show the phase summary, ask approve / reject / stop."""
    from rich.panel import Panel
    from rich.prompt import Prompt

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
    phase: Annotated[Optional[int], typer.Option("--phase", "-p", help="Phase to work on.",
                                                 show_default="the first phase not done")] = None,
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
    agent_api: Annotated[Optional[list[str]], typer.Option("--agent-api", help="Base URL of a model API the agent "
                                                           "CLI may reach under --sandbox bwrap, its only way out "
                                                           "(repeatable; a known CLI's own API, from its base URL "
                                                           "setting, is always allowed; any other CLI gets no "
                                                           "network without one).", metavar="URL",
                                                           show_default=False)] = None,
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
    sandbox: Annotated[Optional[SandboxChoice], typer.Option(help="Where the agent's commands and the checks run. "
                                                           "bwrap (Linux) / seatbelt (macOS): only the repository "
                                                           "and scratch space are writable, the home and .ralph/ "
                                                           "hidden; under bwrap the agent's network reaches only "
                                                           "its model API. auto: the one this OS "
                                                           "has; when it cannot work, none with a warning on every "
                                                           "run. none: the agent has your rights. See docs/judge.md.",
                                                           show_default="auto")] = None,
    reset_on_fail: Annotated[Optional[bool], typer.Option("--reset-on-fail/--keep-on-fail",
                                                          help="Restore the tree after a failed attempt instead of "
                                                          "keeping it for the next.", show_default="keep")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the prompts and checks; run nothing.")] = False,
    no_input: Annotated[bool, typer.Option("--no-input", help="Never prompt: write an approval request and "
                                           "exit 3 instead.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Approve the phase automatically when its exit criteria "
                                      "pass (recorded as such).")] = False,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="Commit uncommitted changes first, as your own "
                                              "commit (otherwise a dirty tree is refused).")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Leave checks that run as Ray jobs running and exit 7 "
                                          "instead of waiting for them; `ralph run` or `ralph jobs wait` collects "
                                          "them later.")] = False,
    parallel: Annotated[int, typer.Option("--parallel", min=1, help="Optimize features: this many candidates at "
                                          "once, each agent in its own git worktree from the incumbent (docs/prd.md, "
                                          "\"Optimize\").")] = 1,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Work through a phase: one agent attempt at a time, verified by the harness, committed when it passes.

    Exit codes: 0 done, 2 usage error, 3 awaiting approval, 4 budget exhausted, 5 blocked features or
    failing exit checks, 6 entry criteria not met, 7 jobs still running (--no-wait), 130 interrupted (Ctrl-C, SIGTERM or SIGHUP; state
    saved; run again to resume). Defaults also come from `[tool.ralph]` in the committed
    pyproject.toml and from `.ralph/config.toml`.
    """
    from harness.run.phases import next_phase
    from harness.settings import load_settings

    opened = functools.cache(lambda: open_project(repo, prd))  # the phase's choice and the dry run read it once
    if phase is None:
        first = opened()
        chosen = first.prd.phase(first.prd.feature(feature).phase) if feature else next_phase(first)
        phase = chosen.id
        err_console.print(f"phase {phase} ({escape(chosen.name)}): "
                          + ("the phase of " + feature if feature else "the first phase not done")
                          + " (--phase N to choose another)")
    flags = {
        "agent": agent, "model": model, "agent_cmd": agent_cmd, "agent_env": agent_env or None,
        "agent_api": agent_api or None,
        "max_iterations": max_iterations,
        "max_attempts": max_attempts, "attempt_timeout_s": attempt_timeout, "max_turns": max_turns,
        "max_cost_usd": max_cost_usd, "max_tokens": max_tokens, "max_hours": max_hours,
        "sandbox": sandbox.value if sandbox else None, "reset_on_fail": reset_on_fail,
    }
    if dry_run:
        from harness.run.preview import preview
        from harness.run.session import build_agent, with_sandbox

        project = opened()
        settings, note = with_sandbox(load_settings(project.repo, flags))  # the preview names the sandbox that runs
        if note:
            err_console.print(f"[bold red]warning:[/] {escape(note)}")
        backend = build_agent(settings)
        template = getattr(backend, "template", None)
        described = f"{backend.name} runs: {template}" if template else f"{backend.name}, model {backend.model}"
        typer.echo(preview(project, phase, settings, feature, agent=described))
        return
    stops = (signal.SIGTERM, signal.SIGHUP)  # a supervisor's stop or a closed terminal: handled like Ctrl-C
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in stops}
    try:
        with locked_project(repo, prd, "ralph run") as project:
            run_locked(project, phase, feature, load_settings(project.repo, flags), no_input=no_input, yes=yes,
                       allow_dirty=allow_dirty, wait=not no_wait, parallel=parallel)
    except KeyboardInterrupt:  # before or after the loop (it handles its own): nothing is half-done
        from harness.run.loop import Interrupted

        raise Interrupted("interrupted; state is saved and `ralph run` resumes where it stopped") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_locked(project: Project, phase: int, feature: str | None, settings: RunSettings, *, no_input: bool, yes: bool,
               allow_dirty: bool, wait: bool = True, parallel: int = 1) -> None:
    """The body of `ralph run`, holding the repository's lock."""
    from harness.optimize.search import Search
    from harness.run.loop import Interrupted, PhaseRunner
    from harness.run.session import describe_sandbox, ready_agent, toolchain_warning, with_sandbox
    from harness.views.live import RunView

    requested = settings.sandbox
    settings, note = with_sandbox(settings)
    err_console.print(f"sandbox: {escape(describe_sandbox(requested, settings.sandbox))}")
    if note:  # on every run: the agent has the user's rights
        err_console.print(f"[bold red]warning:[/] {escape(note)}")
    warning = toolchain_warning(settings, project.repo)
    if warning:
        err_console.print(f"[bold red]warning:[/] {escape(warning)}")
    backend, checked = ready_agent(settings, project.repo)
    err_console.print(f"preflight: {escape(checked)}")
    interactive = console.is_terminal and not no_input and not yes
    asked: list[Phase] = []  # the approval prompt shows the summary itself

    def ask(p: Phase, summary: str) -> tuple[str, str, str]:
        asked.append(p)
        return ask_approval(p, summary)

    with RunView(console, f"{phase}: {project.prd.phase(phase).name}", project.repo) as view:
        runner = PhaseRunner(project, phase, backend, settings, view, feature_id=feature,
                             ask=view.paused(ask) if interactive else None, auto_approve=yes, allow_dirty=allow_dirty,
                             wait=wait, search=Search(project, backend, settings, view, parallel).run)
        try:
            outcome = runner.run()
        except KeyboardInterrupt:  # outside an attempt (the loop handles those): state is already saved
            raise Interrupted("interrupted; state is saved and `ralph run` resumes where it stopped") from None
        finally:
            if runner.entered and not asked:
                view.say(runner.summary())
    waiting = (ExitCode.AWAITING_APPROVAL, ExitCode.JOBS_RUNNING)
    style = "green" if outcome.code == ExitCode.OK else "yellow" if outcome.code in waiting else "red"
    console.print(f"[{style}]{escape(outcome.message)}[/]")
    for fid, reason in outcome.blocked.items():
        console.print(f"  [red]blocked[/] {fid}: {escape(reason)}")
    raise typer.Exit(int(outcome.code))


@command()
def leaderboard(
    feature: Annotated[str, typer.Argument(help="An optimize feature's id.")],
    as_json: Annotated[bool, typer.Option("--json", help='Print the leaderboard as JSON: {"trials": [...], ...}, each '
                                          "trial with its verdict (keep, discard, crash).")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also write the plot (PNG) here.",
                                                 show_default="<repo>/.ralph/optimize/FEATURE/leaderboard.png",
                                                 dir_okay=False)] = None,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Show an optimize feature's search: every trial (baseline, candidates, the confirmation) with its metric per
    seed, mean and std, difference from the incumbent and p, verdict, hypothesis, cost, time and holdout figure."""
    from harness.optimize.board import optimize_dir, require_board
    from harness.optimize.plot import plot_board
    from harness.views.board import board_table, ending_lines

    project = open_project(repo, prd)
    board = require_board(project.repo, project.prd.feature(feature).id)
    if as_json:
        typer.echo(json.dumps(board.to_json(), indent=1))
        return
    console.print(board_table(board))
    for line in ending_lines(board):
        console.print(escape(line))
    out = plot_board(board, plot or optimize_dir(project.repo, feature) / "leaderboard.png")
    console.print(f"plot: {escape(str(out))}")


@command()
def show(
    feature: Annotated[str, typer.Argument(help="Feature id.")],
    attempt: Annotated[Optional[int], typer.Option("--attempt", "-a", help="Attempt number.", min=1,
                                                   show_default="the latest")] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not shorten long prompts and tool outputs.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Also show what the attempt changed (git's stat and patch, "
                                       "from the commit that holds its tree; a failed attempt's is kept under "
                                       "refs/ralph/attempts/).")] = False,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Render one attempt from .ralph/runs/: prompt, agent turns, tool calls and their output, checks, verdict,
    cost and time; with --diff, its diff."""
    from harness.views.show import find_attempt, render_attempt

    project = open_project(repo, prd)
    record = find_attempt(project, project.prd.feature(feature).id, attempt)
    console.print(render_attempt(record, full=full, diff=diff), soft_wrap=False)


@command()
def report(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML file to write.", dir_okay=False,
                                                show_default="<repo>/.ralph/report/index.html")] = None,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Write a static HTML page of the plan (phases, features, evidence, figures, plots, transcripts, W&B runs);
    it opens from disk, no server needed."""
    from harness.views.report import write_report

    project = open_project(repo, prd)
    path = write_report(project, out or ralph_dir(project.repo) / REPORT)
    console.print(f"[green]✓[/] wrote {escape(str(path))}  (open it in a browser: file://{escape(str(path.resolve()))})")


# ---------------------------------------------------------------- ralph jobs


@jobs_app.callback(invoke_without_command=True)
def jobs_list(ctx: typer.Context, repo: Repo = Path("."), prd: PrdPath = None) -> None:
    """List the jobs of job-backed checks: feature, check, seed, state (asked of the cluster while they run),
    elapsed time, job id."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        from harness.judge import jobs
        from harness.views.live import jobs_table

        records = jobs.as_they_are(open_project(repo, prd))
        if not records:
            console.print("no jobs recorded: no check with \"executor\": \"ray\" has run yet")
            return
        console.print(jobs_table(records))
    except RalphError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(int(e.exit_code)) from None


@command("logs", group=jobs_app)
def jobs_logs(
    job_id: Annotated[str, typer.Argument(help="Job id (or a unique prefix), as `ralph jobs` lists it.")],
    tail: Annotated[Optional[int], typer.Option("--tail", "-n", help="Only the last N lines.", min=1)] = None,
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Print a job's log, as the cluster has it now (the returned files' block is left out)."""
    from harness.judge import jobs
    from harness.judge.executors.ray import strip_results

    project = open_project(repo, prd)
    job = jobs.find(project.ledger, job_id)
    text = strip_results(jobs.cluster(project).logs(job.id), job.nonce)
    lines = text.splitlines()
    typer.echo("\n".join(lines[-tail:] if tail else lines))


@command("cancel", group=jobs_app)
def jobs_cancel(
    job_id: Annotated[str, typer.Argument(help="Job id (or a unique prefix), as `ralph jobs` lists it.")],
    repo: Repo = Path("."),
    prd: PrdPath = None,
) -> None:
    """Stop a job on the cluster. Its feature's verification then fails with "cancelled" when collected
    (by the `ralph run` waiting for it, the next `ralph run`, or `ralph jobs wait`)."""
    from harness.judge import jobs

    project = open_project(repo, prd)
    job = jobs.find(project.ledger, job_id)
    if job.done:
        raise RalphError(f"job {job.id} has already ended ({job.state})")
    stopped = jobs.cluster(project).stop(job.id)
    console.print(f"{'stopped' if stopped else 'asked the cluster to stop'} {escape(job.id)} ({escape(job.feature)} · "
                  f"{escape(job.check)}); it counts as failing evidence when collected")


@command("wait", group=jobs_app)
def jobs_wait(repo: Repo = Path("."), prd: PrdPath = None) -> None:
    """Wait for every running job (live view), collect the results and record the verdicts (committing the
    features that pass), without running the agent; exit 1 when a feature fails."""
    from harness.judge import jobs
    from harness.views.live import RunView

    with locked_project(repo, prd, "ralph jobs wait") as project:
        running = jobs.resume(project)
        if not running:
            console.print("no jobs running")
            return
        with RunView(console, "jobs", project.repo) as view:
            verdicts = jobs.wait(project, view)
    rows = [(v.feature.id, e) for v in verdicts for e in v.evidence]
    console.print(evidence_table(rows))
    print_failures(rows, project.repo)
    for v in verdicts:
        console.print(f"{v.feature.id}: {v.status}" + (f", committed {v.commit.sha[:10]}" if v.commit else ""))
    if any(not v.passed for v in verdicts):
        raise typer.Exit(ExitCode.FAILED)


def main() -> None:
    app()
