"""A repository ralph works in: its PRD, ledger, progress log, protected set and check environment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.books.git.repo import require_repository
from harness.books.layout import RUNS, ralph_dir
from harness.books.ledger import Ledger
from harness.books.progress import ProgressLog
from harness.fileio import atomic_write_text, now_iso
from harness.plan.prd import PRD, load_prd
from harness.plan.prdtext import Unreadable, with_passes
from harness.sandbox import guards
from harness.sandbox.environment import Environment


@dataclass
class Project:
    """The repository, its validated PRD (and the exact text it was loaded from), ledger and log.

    `environment` is where the checks run (`ralph run` sets it from `--sandbox`; on its own: none).
    """

    repo: Path
    prd_path: Path
    prd: PRD
    ledger: Ledger
    progress: ProgressLog
    prd_text: str
    environment: Environment = field(default_factory=Environment)

    @classmethod
    def open(cls, repo: Path | str = ".", prd_path: Path | str | None = None) -> Project:
        """Raises PRDError / VCSError / LedgerError with an actionable message when unusable."""
        repo = Path(repo).resolve()
        require_repository(repo)
        path = Path(prd_path) if prd_path else repo / "PRD.json"
        prd = load_prd(path)
        return cls(repo, path, prd, Ledger(repo, plan=prd), ProgressLog(repo), path.read_text(encoding="utf-8"))

    @property
    def protected(self) -> list[str]:
        """What the agent may not change: the harness's records plus the PRD's `protected` globs."""
        return list(dict.fromkeys([*guards.ALWAYS_PROTECTED, *self.prd.defaults.protected]))

    def snapshot(self) -> guards.Snapshot:
        """The protected files as they are now (the baseline an attempt is compared with)."""
        return guards.snapshot(self.repo, self.prd.defaults.protected)

    def write_passes(self, passes: dict[str, bool]) -> None:
        """Set `passes` in PRD.json, starting from the text ralph loaded, never from what is on disk now
        (an edit made meanwhile by anyone else is overwritten, not merged). Only those values change: the
        file keeps its author's formatting (plan/prdtext.py), unless it cannot be read that way."""
        for f in self.prd.features:
            if f.id in passes:
                f.passes = passes[f.id]
        try:
            self.prd_text = with_passes(self.prd_text, passes)
        except Unreadable:
            data = json.loads(self.prd_text)
            for f in data["features"]:
                if f["id"] in passes:
                    f["passes"] = passes[f["id"]]
            self.prd_text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(self.prd_path, self.prd_text)

    def log_dir(self, name: str) -> Path:
        """`.ralph/runs/<timestamp>-<name>/` for full check output."""
        return ralph_dir(self.repo) / RUNS / f"{now_iso().replace(':', '')}-{name}"
