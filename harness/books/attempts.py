"""The history of attempts (`.ralph/attempts.jsonl`): one line per judged attempt, failed ones too.

The ledger keeps a feature's latest evidence only; the results page (views/report.py) and `ralph show`
need every attempt: its verdict and evidence (the per-seed figures the charts are drawn from), what it
cost and how long it took, and the commit that holds its tree (`git/kept.py`), from which its diff is
read. Lines are appended by `judge.verdict.record_verdict` when it records an attempt, under the
repository lock; a line that does not parse (ralph killed mid-write) is skipped and counted.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field, ValidationError

from harness.books.layout import ATTEMPTS, PLOTS, ralph_dir
from harness.books.records import Evidence, Record
from harness.fileio import now_iso


class AttemptEntry(Record):
    """One judged attempt of one feature."""

    feature: str
    attempt: int = Field(description="its number (FeatureState.attempt_serial: goes on across rounds)")
    at: str = Field(default_factory=now_iso, description="when its verdict was recorded")
    status: str = Field(description="the feature's status after it: passing, failing, blocked")
    agent: str | None = None
    model: str | None = None
    agent_status: str | None = Field(None, description="how the agent's run ended (completed, timeout, error, ...)")
    turns: int | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    agent_s: float | None = Field(None, description="wall clock of the agent's run")
    checks_s: float = Field(0.0, description="the checks' time, summed")
    evidence: list[Evidence] = Field(default_factory=list)
    base: str | None = Field(None, description="the commit the attempt started from")
    commit: str | None = Field(None, description="the commit holding the tree it was judged on: ralph's commit when "
                               "it passed, else a kept commit (refs/ralph/attempts/<feature>/<n>)")
    kept: str | None = Field(None, description="why its tree was not kept, when it was not")
    plots: list[str] = Field(default_factory=list, description="copies of the images its checks wrote, relative to "
                             ".ralph/ (the files themselves are overwritten by the next attempt's checks)")

    @property
    def passed(self) -> bool:
        return self.status == "passing"


PLOT_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp")
PLOT_BYTES = 4_000_000  # a larger image is not kept
PLOTS_PER_ATTEMPT = 24
PLOTS_BYTES_PER_ATTEMPT = 16_000_000  # all of an attempt's copies together


def _path(repo: Path | str) -> Path:
    return ralph_dir(repo) / ATTEMPTS


def keep_plots(repo: Path | str, feature_id: str, number: int, images: Iterable[str]) -> list[str]:
    """Copy `images` (the images the checks wrote, repository-relative) to `.ralph/plots/<feature>/<n>/`;
    returns their paths relative to `.ralph/`. Only regular files inside the repository are copied (a symlink the checks left
    could point at any file of the user's), at most PLOTS_PER_ATTEMPT of them, each at most PLOT_BYTES and
    together at most PLOTS_BYTES_PER_ATTEMPT (an attempt's checks cannot fill the disk through ralph's copies)."""
    root = Path(repo).resolve()
    dest = ralph_dir(repo) / PLOTS / feature_id / str(number)
    kept: list[str] = []
    room = PLOTS_BYTES_PER_ATTEMPT
    for rel in images:
        src = root / rel
        if len(kept) >= PLOTS_PER_ATTEMPT or not rel.lower().endswith(PLOT_SUFFIXES):
            continue
        try:
            st = src.lstat()
            inside = src.resolve().is_relative_to(root) and ".." not in Path(rel).parts
        except OSError:
            continue
        if not inside or not stat.S_ISREG(st.st_mode) or st.st_size > min(PLOT_BYTES, room):
            continue
        room -= st.st_size
        target = dest / rel.replace("/", "__")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target, follow_symlinks=False)
        except OSError:  # gone since, or unreadable: the record goes without it
            continue
        kept.append(target.relative_to(ralph_dir(repo)).as_posix())
    return kept


def append_attempt(repo: Path | str, entry: AttemptEntry) -> None:
    """Append one line and sync it (a crash leaves at most a partial last line, which readers skip: the next
    line starts on a line of its own)."""
    path = _path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        torn = f.tell() > 0 and (f.seek(-1, os.SEEK_END) or f.read(1)) != b"\n"
        f.write((b"\n" if torn else b"") + entry.model_dump_json().encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def read_attempts(repo: Path | str, feature_id: str | None = None) -> tuple[list[AttemptEntry], int]:
    """(the recorded attempts, oldest first, of `feature_id` or of all features; how many lines were unreadable).
    An attempt recorded twice (its number reused after a refund) counts once, as recorded last."""
    path = _path(repo)
    if not path.is_file():
        return [], 0
    found: dict[tuple[str, int], AttemptEntry] = {}
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                entry = AttemptEntry.model_validate_json(line)
            except (ValidationError, json.JSONDecodeError):
                bad += 1
                continue
            if feature_id is None or entry.feature == feature_id:
                found[(entry.feature, entry.attempt)] = entry
    return sorted(found.values(), key=lambda e: e.attempt), bad
