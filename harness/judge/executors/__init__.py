"""Where a `run` check's command runs, and what every executor shares.

`local` (the default, local.py): the command runs here, in ralph's own process group, inside the
candidate tree's checkout (checktree.py). `ray` submits one job per seed to a Ray cluster through
Ray's Job Submission API (ray.py, judge/jobs.py). The cluster is configured by the user, never by the plan: `RAY_ADDRESS`, else
`[tool.ralph.executors.ray]` in the committed pyproject.toml (docs/cluster.md; harness/settings.py).
The records of jobs are `harness.books.records.JobRecord` and `Pending`.

Both executors take a check's runs from `seed_runs` (one per seed, the same command and the same
variables either way) and word their evidence with `run_detail`, so a check reads the same
whether it ran here or on Ray:

- `local.run_command_check`: each run in ralph's own process group, one after the other, in the
  check tree; the evidence when the last has ended (or the first fails).
- `ray.py` and `judge/jobs.py`: each run becomes one job (`JobRecord`), submitted now; the
  evidence when every job of the check has ended (`jobs.collect`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.books.records import Verdict
from harness.plan.prd import Check, seeded

TAIL_BYTES = 2048  # of a run's output, kept as its evidence's tail


@dataclass(frozen=True)
class SeedRun:
    """One run of a `run` check: its seed (None when the check has no seeds), the command with {seed}
    filled in, and the variables it sees on top of its executor's scrubbed environment."""

    seed: int | None
    command: str
    env: dict[str, str]

    @property
    def where(self) -> str:
        """How details name the run: " (seed 3)", or nothing for an unseeded check."""
        return "" if self.seed is None else f" (seed {self.seed})"


def seed_runs(check: Check, labels: Mapping[str, str]) -> list[SeedRun]:
    """The runs of `check`, in order: one per seed, or one. Each sees `labels` (RALPH_PHASE, RALPH_FEATURE),
    RALPH_SEED when seeded, unbuffered Python output, PYTHONSAFEPATH=1 (nothing in the working directory
    shadows a module: a planted `json.py` is not what `import json` finds) and PYTHONNOUSERSITE=1 (the user's
    own site-packages, which no sandbox setting guards, is not on a check's path; a virtual environment never
    reads it anyway)."""
    assert check.run is not None
    base = {"PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1", "PYTHONNOUSERSITE": "1", **labels}
    return [SeedRun(seed, seeded(check.run, seed), {**base, **({"RALPH_SEED": str(seed)} if seed is not None else {})})
            for seed in check.seeds or [None]]


def run_detail(verdict: Verdict, *, where: str = "", exit_code: int | None = None, timeout_s: float = 0.0,
               seeds: Sequence[int] | None = None, on: str = "") -> str:
    """The one-line detail of a run check's evidence. `where` names the run (SeedRun.where), `on` the
    executor when not local (" on Ray (job …)")."""
    if verdict == "timeout":
        return f"timed out after {timeout_s:g}s{where}{on}; its whole process group was killed"
    if verdict == "pass":
        for_seeds = f" for seeds {', '.join(map(str, seeds))}" if seeds else ""
        return f"exit 0{for_seeds}{on}"
    return f"exit {exit_code}{where}{on}"


def slug(name: str) -> str:
    """A check's name as a file or job name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "check"


