"""What `ralph run` shows while it works: phase, feature, attempt, elapsed, spend, latest action.

On a terminal a rich Live panel refreshes in place; otherwise (CI, pipes, logs) each event is
printed once as a plain line, so the output stays readable in a log file. The panel stops while
someone is asked something (`paused`), so the question and the typed answer stay on screen.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.agents.base import AgentEvent, Usage
from harness.books.records import Evidence, JobRecord
from harness.fileio import printable
from harness.plan.prd import Check
from harness.views.show import check_output

P = ParamSpec("P")
R = TypeVar("R")


def jobs_table(jobs: list[JobRecord], tails: dict[str, str] | None = None) -> Table:
    """Feature, check, seed, state, elapsed, job id (and the last log line, when known)."""
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("feature", "check", "seed", "state", "elapsed", "job id", *(["last line"] if tails else [])):
        table.add_column(col)
    now = time.time()
    styles = {"SUCCEEDED": "green", "FAILED": "red", "STOPPED": "red", "RUNNING": "yellow"}
    for j in jobs:
        # Text, never markup: a check's name, and a job's last log line (what the job printed), are shown as written
        row = [Text(j.feature), Text(j.check), "-" if j.seed is None else str(j.seed),
               Text(j.state, styles.get(j.state, "dim")), _clock(j.elapsed_s(now)), Text(j.id)]
        table.add_row(*row, *([Text(printable((tails or {}).get(j.id, "")[:80]))] if tails else []))
    return table


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


class RunView:
    """Receives loop events (and check progress, as a `checks.Reporter`) and renders them."""

    def __init__(self, console: Console, phase_label: str, repo: Path | None = None):
        self.console = console
        self.repo = repo or Path.cwd()  # check log paths are shown relative to it
        self.phase_label = phase_label
        self.t0 = time.monotonic()
        self.feature = "-"
        self.attempt = "-"
        self.action = "starting"
        self.spent = Usage()  # this run, finished attempts
        self.attempt_usage = Usage()  # the attempt in flight
        self._live: Live | None = None
        self.jobs: list[JobRecord] = []  # checks running as jobs, while the run waits for them
        self.job_tails: dict[str, str] = {}
        self._job_states: dict[str, str] = {}

    # ---- lifecycle

    def __enter__(self) -> RunView:
        if self.console.is_terminal:
            self._start_live()
        return self

    def _start_live(self) -> None:
        self._live = Live(self._panel(), console=self.console, refresh_per_second=4, transient=True,
                          get_renderable=self._panel)
        self._live.start()

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._live.__exit__(None, None, None)
            self._live = None

    def paused(self, fn: Callable[P, R]) -> Callable[P, R]:
        """`fn` wrapped so that the live panel is gone while it runs (a prompt) and back after."""

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            live = self._live
            if live is None:
                return fn(*args, **kwargs)
            live.stop()  # transient: the panel is erased, the cursor shown again
            self._live = None
            try:
                return fn(*args, **kwargs)
            finally:
                # A new Live, not `live.start()`: a restarted one still knows the old panel's height
                # and would erase that many lines of the prompt and the answers above it.
                self._start_live()

        return call

    def _panel(self) -> Table:
        spent = self.spent + self.attempt_usage
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan")
        grid.add_column()
        grid.add_row("phase", Text(self.phase_label))  # Text: names and output are never read as markup
        grid.add_row("feature", Text(f"{self.feature}  (attempt {self.attempt})"))
        grid.add_row("elapsed", _clock(time.monotonic() - self.t0))
        grid.add_row("spent", f"{spent.total_tokens:,} tokens  ${spent.cost_usd:.4f}")
        grid.add_row("doing", Text(self.action[:200]))
        if self.jobs:
            grid.add_row("jobs", jobs_table(self.jobs, self.job_tails))
        return grid

    def say(self, text: str, style: str = "") -> None:
        """A line that stays in the scrollback (above the live panel on a terminal). `text` is plain text,
        never read as markup: it may hold what the agent wrote (a check's name, a failure's detail)."""
        self.console.print(Text(text, style=style), highlight=False)

    def _say_timed(self, text: str) -> None:
        self.console.print(Text.assemble("  ", (_clock(time.monotonic() - self.t0), "dim"), " ", text), highlight=False)

    def _set_action(self, action: str) -> None:
        self.action = " ".join(action.split())
        if not self._live:
            self._say_timed(self.action[:160])

    # ---- loop events

    def attempt_started(self, feature_id: str, attempt: int, max_attempts: int, *, number: int | None = None) -> None:
        named = (f" (attempt {number} in all: `ralph show {feature_id} --attempt {number}`)"
                 if number not in (None, attempt) else "")
        self.feature, self.attempt = feature_id, f"{attempt}/{max_attempts}"
        self.attempt_usage = Usage()
        self.console.print(Text.assemble((feature_id, "bold"), f" attempt {attempt}/{max_attempts}", (named, "dim")),
                           highlight=False)

    def agent_event(self, event: AgentEvent) -> None:
        self.attempt_usage = event.usage
        self._set_action(f"agent turn {event.turn}: {event.action}")

    def attempt_finished(self, usage: Usage, verdict: str) -> None:
        self.spent = self.spent + usage
        self.attempt_usage = Usage()
        colour = "green" if verdict == "pass" else "yellow" if verdict == "running" else "red"
        self.console.print(Text.assemble("  → ", (verdict, colour)), highlight=False)

    def show_jobs(self, jobs: list[JobRecord], tails: dict[str, str]) -> None:
        """The jobs being waited for: in the panel on a terminal, else a line per change of state."""
        self.jobs, self.job_tails = jobs, tails
        self.action = f"waiting for {sum(not j.done for j in jobs)} job(s)"
        for job in jobs:
            if self._job_states.get(job.id) != job.state:
                self._job_states[job.id] = job.state
                if not self._live:
                    self._say_timed(f"job {job.id}: {job.state}")

    # ---- checks.Reporter

    def started(self, check: Check, index: int, total: int) -> None:
        self._set_action(f"check {index + 1}/{total}: {check.name}")

    def line(self, text: str) -> None:
        if self._live and text.strip():
            self.action = f"check output: {text.strip()}"

    def finished(self, evidence: Evidence) -> None:
        colour = "green" if evidence.passed else "red"
        self.console.print(Text.assemble("  ", (f"{evidence.verdict:<7}", colour), f" {evidence.check}: {evidence.detail}"),
                           highlight=False)
        if not evidence.passed:
            self.console.print(check_output(evidence, self.repo), highlight=False)
