"""The harness's durable records in `.ralph/`: per-feature state, phase decisions, the repo lock.

`state.json` is rewritten atomically after every change (temp file + fsync + rename), so a crash
at any point leaves the previous complete version. The lock is an advisory `flock` on
`.ralph/lock`: the kernel drops it when its process dies, so a dead holder never blocks anyone,
and the file names the live holder (pid, host, command) for the error message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, Field, ValidationError

from harness.checks import Evidence, all_passed
from harness.errors import RalphError
from harness.fileio import atomic_write_text, now_iso

RALPH_DIR = ".ralph"
FeatureStatus = Literal["pending", "passing", "failing", "blocked"]


def ralph_dir(repo: Path | str) -> Path:
    return Path(repo) / RALPH_DIR


class LedgerError(RalphError):
    """state.json exists but cannot be used."""


class RepoLockedError(RalphError):
    """Another live ralph process holds this repository's lock."""


class FeatureState(BaseModel):
    status: FeatureStatus = "pending"
    attempts: int = 0
    cost_usd: float = 0.0
    tokens: int = 0
    last_evidence: list[Evidence] = Field(default_factory=list)
    verified_commit: str | None = Field(None, description="commit of the last passing verification")
    verified_at: str | None = None
    blocked_reason: str | None = None
    updated_at: str | None = None


class Decision(BaseModel):
    """A human's approval or rejection of a phase; `note` is the approval note or rejection reason."""

    decision: Literal["approved", "rejected"]
    by: str
    note: str = ""
    at: str = Field(default_factory=now_iso)
    commit: str | None = None


class PhaseState(BaseModel):
    decisions: list[Decision] = Field(default_factory=list, description="oldest first; the last one counts")
    exit_evidence: list[Evidence] = Field(default_factory=list)

    @property
    def decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    @property
    def approved(self) -> bool:
        return self.decision is not None and self.decision.decision == "approved"


class State(BaseModel):
    version: Literal[1] = 1
    features: dict[str, FeatureState] = Field(default_factory=dict)
    phases: dict[str, PhaseState] = Field(default_factory=dict)


class Ledger:
    """Read and update `.ralph/state.json`; every mutating method saves before returning."""

    def __init__(self, repo: Path | str):
        self.repo = Path(repo)
        self.path = ralph_dir(repo) / "state.json"
        self.state = self._load()

    def _load(self) -> State:
        if not self.path.exists():
            return State()
        fix = "fix it, or move it away to start fresh (evidence is re-created by `ralph verify --all`)"
        try:
            return State.model_validate_json(self.path.read_text(encoding="utf-8"))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise LedgerError(f"{self.path} is not a ralph state file ({where}: {first['msg']}); {fix}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise LedgerError(f"{self.path} cannot be read ({e}); {fix}") from None

    def save(self) -> None:
        atomic_write_text(self.path, self.state.model_dump_json(indent=2) + "\n")

    # ---- reading

    def feature(self, feature_id: str) -> FeatureState:
        """The feature's state (a fresh pending one if it has none yet)."""
        return self.state.features.get(feature_id) or FeatureState()

    def phase(self, phase_id: int) -> PhaseState:
        return self.state.phases.get(str(phase_id)) or PhaseState()

    # ---- writing

    def _feature(self, feature_id: str) -> FeatureState:
        fs = self.state.features.setdefault(feature_id, FeatureState())
        fs.updated_at = now_iso()
        return fs

    def _phase(self, phase_id: int) -> PhaseState:
        return self.state.phases.setdefault(str(phase_id), PhaseState())

    def begin_attempt(self, feature_id: str) -> int:
        """Count an agent attempt (before it runs, so a crash still counts it); returns its number."""
        fs = self._feature(feature_id)
        fs.attempts += 1
        self.save()
        return fs.attempts

    def add_usage(self, feature_id: str, *, cost_usd: float = 0.0, tokens: int = 0) -> None:
        fs = self._feature(feature_id)
        fs.cost_usd += cost_usd
        fs.tokens += tokens
        self.save()

    def record_verification(self, feature_id: str, evidence: list[Evidence], commit: str | None) -> FeatureStatus:
        """Store the evidence and derive the status: passing only when every check passed.

        A blocked feature that still fails stays blocked (with its reason); one that passes is unblocked.
        """
        fs = self._feature(feature_id)
        fs.last_evidence = evidence
        if all_passed(evidence):
            fs.status, fs.blocked_reason = "passing", None
            fs.verified_commit, fs.verified_at = commit, now_iso()
        elif fs.status != "blocked":
            fs.status = "failing"
        self.save()
        return fs.status

    def refund_attempt(self, feature_id: str) -> None:
        """Un-count an attempt that ended by no fault of the agent (Ctrl-C, a crash, a harness error)."""
        fs = self._feature(feature_id)
        fs.attempts = max(0, fs.attempts - 1)
        self.save()

    def unblock(self, feature_id: str) -> None:
        """A person asked for another round (`ralph run --feature ID`): failing, attempts counted afresh."""
        fs = self._feature(feature_id)
        fs.status, fs.blocked_reason, fs.attempts = "failing", None, 0
        self.save()

    def mark_blocked(self, feature_id: str, reason: str) -> None:
        fs = self._feature(feature_id)
        fs.status, fs.blocked_reason = "blocked", reason
        self.save()

    def record_exit(self, phase_id: int, evidence: list[Evidence]) -> None:
        self._phase(phase_id).exit_evidence = evidence
        self.save()

    def record_decision(self, phase_id: int, decision: Decision) -> None:
        self._phase(phase_id).decisions.append(decision)
        self.save()


# ---- the attempt in flight: written before the agent starts, removed once the attempt is recorded


def inflight_path(repo: Path | str) -> Path:
    return ralph_dir(repo) / "attempt.json"


def write_inflight(repo: Path | str, record: dict) -> None:
    """Save what a crashed run needs to undo the attempt (see harness/recovery.py), durably."""
    atomic_write_text(inflight_path(repo), json.dumps(record) + "\n")


def read_inflight(repo: Path | str) -> dict | None:
    path = inflight_path(repo)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LedgerError(f"{path} (the record of an unfinished attempt) cannot be read: {e}; "
                          "check the working tree against the last commit, then delete it") from None


def clear_inflight(repo: Path | str) -> None:
    inflight_path(repo).unlink(missing_ok=True)


def write_left_tree(repo: Path | str, fingerprint: str) -> None:
    """The tree fingerprint ralph left after an attempt (its own leftovers are not a dirty tree)."""
    atomic_write_text(ralph_dir(repo) / "left-tree", fingerprint + "\n")


def read_left_tree(repo: Path | str) -> str | None:
    path = ralph_dir(repo) / "left-tree"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


class RepoLock:
    """`with RepoLock(repo, "ralph run"):` — one ralph process per repository at a time.

    Uses fcntl.flock (POSIX only, as is the rest of the process handling): released by the kernel
    when the holder exits or dies, so stale locks recover by themselves.
    """

    def __init__(self, repo: Path | str, command: str = "ralph"):
        self.path = ralph_dir(repo) / "lock"
        self.command = command
        self._file: IO[str] | None = None

    def __enter__(self) -> RepoLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise RepoLockedError(f"another ralph process is working in this repository: {_describe(holder)}. "
                                  f"Wait for it to finish or stop it; the lock ({self.path}) frees itself "
                                  "when that process exits.") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                            "since": now_iso()}))
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on {info['host']} running `{info['command']}` since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
