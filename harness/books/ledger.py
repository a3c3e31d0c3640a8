"""The harness's durable records in `.ralph/`: per-feature state, phase decisions, the repo lock.

`state.json` is rewritten atomically after every change (temp file + fsync + rename), so a crash
at any point leaves the previous complete version.

A passing verdict is bound to the checks it came from (`FeatureState.checks_sha256`, the digest
of the feature's `verify` list). A ledger opened with the plan (`Ledger(repo, plan=prd)`) turns a
feature whose checks changed since it passed back into a pending one, with the reason, so the loop
works on it again and approval waits for it. Evidence recorded before checks were hashed is
"legacy": kept passing only while its check names, commands and thresholds still match the plan.

The lock is an advisory `flock` on the repository's root directory, which nothing inside the
repository can unlink or replace, and on git's common directory, which every worktree of the
repository shares (with its refs: one ralph's refs/ralph/ updates would be tampering to another's
guards); the kernel drops it when its process dies, so a dead holder never blocks anyone.
`.ralph/lock` only names the live holder (pid, host, command) for the message.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from harness.books.git.repo import git_common_dir, worktrees
from harness.books.layout import IN_FLIGHT, LEFT_TREE, LOCK, STATE, UNVERIFIED, ralph_dir
from harness.books.records import Evidence, JobRecord, Pending, Record, all_passed
from harness.errors import RalphError
from harness.fileio import atomic_write_text, now_iso
from harness.plan.prd import PRD, Check, Feature, checks_digest, seeded

FeatureStatus = Literal["pending", "running", "passing", "failing", "blocked"]  # running: its checks run as jobs
LEGACY_NOTE = ("(legacy): verified before checks were hashed, matched by name, command and threshold; "
               "`ralph verify ID` binds it (approval waits for that)")


class LedgerError(RalphError):
    """state.json exists but cannot be used."""


class RepoLockedError(RalphError):
    """Another live ralph process holds this repository's lock."""


class FeatureState(Record):
    status: FeatureStatus = "pending"
    attempts: int = Field(0, description="attempts in this round, counted against max_attempts; a new round (a "
                          "demotion, a lifted block, `ralph unblock`, `ralph run --feature`) starts it afresh")
    attempt_serial: int = Field(0, description="the number of the feature's latest attempt, never reset: attempts "
                                "are named by it (.ralph/runs/<ts>-<feature>-<n>, progress.txt, `ralph show "
                                "--attempt N`), so a new round never reuses an earlier attempt's number")
    cost_usd: float = 0.0
    tokens: int = 0
    last_evidence: list[Evidence] = Field(default_factory=list)
    verified_commit: str | None = Field(None, description="commit of the last passing verification")
    verified_at: str | None = None
    checks_sha256: str | None = Field(None, description="`checks_digest` of the checks behind `last_evidence`; "
                                      "None for evidence recorded before checks were hashed")
    stale_reason: str | None = Field(None, description="why a verdict that passed no longer counts")
    blocked_reason: str | None = None
    blocked_by: list[str] | None = Field(None, description="the dependencies it waits for, when that is why it is "
                                         "blocked: the block lifts once they all pass")
    blocked_checks_sha256: str | None = Field(None, description="`checks_digest` of its checks when it was blocked: "
                                              "the block lifts once they change in PRD.json")
    updated_at: str | None = None
    jobs: list[JobRecord] = Field(default_factory=list, description="the jobs of the latest job-backed verification")
    pending: Pending | None = Field(None, description="set while those jobs run: what collecting them needs")

    @property
    def legacy(self) -> bool:
        """Passing on evidence recorded before check hashes existed (matched to the plan by name,
        command and threshold only); `ralph verify` binds it properly."""
        return self.status == "passing" and self.checks_sha256 is None


class Decision(Record):
    """A human's approval or rejection of a phase; `note` is the approval note or rejection reason."""

    decision: Literal["approved", "rejected"]
    by: str
    note: str = ""
    at: str = Field(default_factory=now_iso)
    commit: str | None = None


class PhaseState(Record):
    decisions: list[Decision] = Field(default_factory=list, description="oldest first; the last one counts")
    exit_evidence: list[Evidence] = Field(default_factory=list)

    @property
    def decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    @property
    def approved(self) -> bool:
        return self.decision is not None and self.decision.decision == "approved"


class State(Record):
    version: Literal[1] = 1
    features: dict[str, FeatureState] = Field(default_factory=dict)
    phases: dict[str, PhaseState] = Field(default_factory=dict)


class Ledger:
    """Read and update `.ralph/state.json`; every mutating method saves before returning.

    With `plan`, verdicts whose checks no longer match it are demoted to pending at once (in
    memory; saved with the next change), so every reader sees the same answer.
    """

    def __init__(self, repo: Path | str, plan: PRD | None = None):
        self.repo = Path(repo)
        self.path = ralph_dir(repo) / STATE
        self.state = self._load()
        self.lifted: dict[str, str] = {}  # blocks lifted since opened, and why (the loop records them: take_lifted)
        if plan is not None:
            for feature in plan.features:
                self._demote_if_stale(feature)
            for feature in plan.features:
                self.lift(feature)

    def _demote_if_stale(self, feature: Feature) -> None:
        fs = self.state.features.get(feature.id)
        if fs is None or fs.status != "passing":
            return
        if fs.checks_sha256 == checks_digest(feature.verify):
            return
        if fs.checks_sha256 is None and legacy_evidence_matches(fs.last_evidence, feature.verify):
            return
        when = f" at {fs.verified_commit[:7]}" if fs.verified_commit else ""
        fs.status, fs.attempts = "pending", 0  # a new round: earlier attempts were against other checks
        fs.stale_reason = f"checks changed since it passed{when}: `ralph verify {feature.id}`"

    def lift(self, feature: Feature) -> str | None:
        """Lift the feature's block when its cause is gone, and say why (None: it stays as it is).

        A block lifts by itself when the feature's checks changed in PRD.json since it was blocked (a
        loosened gate, a fixed command: a new round), or, for a feature blocked because a dependency was
        not passing, when every dependency it waited for passes. Any other block needs a person
        (`ralph unblock ID`). Like a demotion, it holds in memory and is saved with the next change.
        """
        fs = self.state.features.get(feature.id)
        if fs is None or fs.status != "blocked":
            return None
        waited = fs.blocked_by if fs.blocked_by is not None else _legacy_dependencies(fs.blocked_reason)
        if fs.blocked_checks_sha256 is not None and fs.blocked_checks_sha256 != checks_digest(feature.verify):
            why = "its checks changed in PRD.json since it was blocked"
        elif waited and all(self.feature(d).status == "passing" for d in waited):
            why = f"{', '.join(waited)} now pass{'es' * (len(waited) == 1)}"
        else:
            return None
        fs.status = "failing" if fs.last_evidence else "pending"
        fs.attempts = 0  # a new round, as after a demotion
        fs.blocked_reason, fs.blocked_by, fs.blocked_checks_sha256 = None, None, None
        self.lifted[feature.id] = why
        return why

    def take_lifted(self) -> dict[str, str]:
        """The blocks lifted since the last call (feature -> why), for the record; emptied."""
        lifted, self.lifted = self.lifted, {}
        return lifted

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
        """Count an agent attempt (before it runs, so a crash still counts it); returns its number
        (`attempt_serial`: numbers go on across rounds)."""
        fs = self._feature(feature_id)
        # A ledger written before attempt_serial existed has 0 there: its round count is the best floor.
        fs.attempt_serial = max(fs.attempt_serial, fs.attempts) + 1
        fs.attempts += 1
        self.save()
        return fs.attempt_serial

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
        fs.last_evidence, fs.stale_reason, fs.pending = evidence, None, None
        if fs.status == "running":
            fs.status = "failing"  # what the verdict is decides below; a blocked feature never runs jobs
        digests = [e.check_sha256 for e in evidence]
        fs.checks_sha256 = checks_digest(digests) if all(digests) else None
        if all_passed(evidence):
            fs.status, fs.blocked_reason = "passing", None
            fs.verified_commit, fs.verified_at = commit, now_iso()
        elif fs.status != "blocked":
            fs.status = "failing"
        self.save()
        return fs.status

    def mark_running(self, feature_id: str, pending: Pending, jobs: list[JobRecord]) -> None:
        """The feature's checks were handed to jobs (recorded before any is submitted)."""
        fs = self._feature(feature_id)
        fs.status, fs.pending, fs.jobs = "running", pending, jobs
        self.save()

    def running(self) -> list[str]:
        return [fid for fid, fs in self.state.features.items() if fs.status == "running"]

    def refund_attempt(self, feature_id: str) -> None:
        """Un-count an attempt that ended by no fault of the agent (Ctrl-C, a crash, a harness error)."""
        fs = self._feature(feature_id)
        fs.attempts = max(0, fs.attempts - 1)
        fs.attempt_serial = max(0, fs.attempt_serial - 1)  # the next attempt takes its number (and run folder name)
        self.save()

    def unblock(self, feature_id: str) -> None:
        """A person asked for another round (`ralph unblock ID`, `ralph run --feature ID`): failing, attempts
        counted afresh."""
        fs = self._feature(feature_id)
        fs.status, fs.blocked_reason, fs.attempts = "failing", None, 0
        fs.blocked_by, fs.blocked_checks_sha256 = None, None
        self.save()

    def mark_blocked(self, feature_id: str, reason: str, *, checks: list[Check] | None = None,
                     waiting_for: list[str] | None = None) -> None:
        """Block the feature with `reason`. `checks`: its checks as they are now (the block lifts once they
        change); `waiting_for`: the dependencies that are not passing, when that is the reason (see `lift`)."""
        fs = self._feature(feature_id)
        fs.status, fs.blocked_reason = "blocked", reason
        fs.blocked_by = waiting_for
        fs.blocked_checks_sha256 = checks_digest(checks) if checks is not None else None
        self.save()

    def record_exit(self, phase_id: int, evidence: list[Evidence]) -> None:
        self._phase(phase_id).exit_evidence = evidence
        self.save()

    def record_decision(self, phase_id: int, decision: Decision) -> None:
        self._phase(phase_id).decisions.append(decision)
        self.save()


# ---- the attempt in flight: written before the agent starts, removed once the attempt is recorded

MARK = "RALPH_ATTEMPT"  # environment variable every process of an attempt inherits (recovery finds them by it)


def _in_flight(repo: Path | str) -> Path:
    return ralph_dir(repo) / IN_FLIGHT


def write_inflight(repo: Path | str, record: dict) -> None:
    """Save what a crashed run needs to undo the attempt (see harness/run/recovery.py), durably."""
    atomic_write_text(_in_flight(repo), json.dumps(record) + "\n")


def read_inflight(repo: Path | str) -> dict | None:
    path = _in_flight(repo)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LedgerError(f"{path} (the record of an unfinished attempt) cannot be read: {e}; "
                          "check the working tree against the last commit, then delete it") from None


def note_inflight_commit(repo: Path | str, sha: str, tree: str, evidence: list[Evidence]) -> None:
    """Before ralph moves the branch to its own commit: the commit, its tree and the evidence it was made on
    go into the in-flight record, synced, so that recovery adopts exactly that commit (never one whose
    message merely claims to be ralph's) and records this evidence (never text read from a message).
    Nothing to do outside an attempt (`ralph verify`)."""
    record = read_inflight(repo)
    if record is not None:
        write_inflight(repo, {**record, "commit": sha, "tree": tree,
                              "evidence": [e.model_dump(mode="json") for e in evidence]})


def clear_inflight(repo: Path | str) -> None:
    _in_flight(repo).unlink(missing_ok=True)


def write_left_tree(repo: Path | str, fingerprint: str) -> None:
    """The tree fingerprint ralph left after an attempt (its own leftovers are not a dirty tree)."""
    atomic_write_text(ralph_dir(repo) / LEFT_TREE, fingerprint + "\n")


def read_left_tree(repo: Path | str) -> str | None:
    path = ralph_dir(repo) / LEFT_TREE
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def write_unverified(repo: Path | str, feature_id: str, fingerprint: str) -> None:
    """An interrupted verification of `feature_id` left the tree `fingerprint`: the next run checks it again
    before the agent gets another attempt (run/loop.py, `PhaseRunner.recheck`)."""
    atomic_write_text(ralph_dir(repo) / UNVERIFIED, json.dumps({"feature": feature_id, "tree": fingerprint}) + "\n")


def take_unverified(repo: Path | str) -> dict[str, str] | None:
    """The interrupted verification `write_unverified` recorded, removed as it is read (None when there is none)."""
    path = ralph_dir(repo) / UNVERIFIED
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    finally:
        path.unlink(missing_ok=True)
    return found if isinstance(found, dict) else None


class RepoLock:
    """`with RepoLock(repo, "ralph run"):` — one ralph process per repository at a time, in any of its worktrees.

    The flocks are taken on the repository's root directory and on git's common directory (POSIX only, as
    is the rest of the process handling), not on files inside them: deleting or replacing `.ralph/lock`
    cannot let a second writer in, and the kernel releases the locks when the holder exits or dies. The
    common directory is shared by the worktrees of one repository, and so are the refs ralph writes and
    guards (kept attempts, discarded candidates, approval tags): a ralph in another worktree would move
    them under this one's guards, which would read that as tampering and undo it.
    """

    def __init__(self, repo: Path | str, command: str = "ralph"):
        self.root = Path(repo).resolve()
        self.path = ralph_dir(self.root) / LOCK  # who holds it, for the message; not the lock itself
        self.command = command
        self._fds: list[int] = []

    def __enter__(self) -> RepoLock:
        try:
            self._take(self.root, lambda: f"another ralph process is working in this repository: "
                                          f"{_describe(_read_holder(self.path))}. Wait for it to finish or stop "
                                          f"it; the lock (on {self.root}) frees itself when that process exits.")
            common = git_common_dir(self.root)
            if common is not None and common != self.root:
                self._take(common, lambda: "another ralph process is working in another worktree of this "
                                           f"repository: {_worktree_holders(self.root)}. Its updates to the refs "
                                           "all worktrees share (refs/ralph/, ralph's tags) would read as tampering "
                                           "here; wait for it to finish, or work in a separate clone.")
        except BaseException:
            self.__exit__()
            raise
        try:
            atomic_write_text(self.path, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                     "command": self.command, "since": now_iso()}))
        except OSError:
            pass  # only the message's details are lost; the lock itself holds
        return self

    def _take(self, directory: Path, message: Callable[[], str]) -> None:
        """flock `directory`, or raise RepoLockedError with `message()`."""
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise RalphError(f"cannot lock the repository {directory}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RepoLockedError(message()) from None
        self._fds.append(fd)

    def __exit__(self, *exc: object) -> None:
        while self._fds:
            fd = self._fds.pop()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _worktree_holders(root: Path) -> str:
    """The live ralph processes named by the `.ralph/lock` of the repository's other worktrees."""
    found = []
    for tree in worktrees(root):
        if tree.resolve() == root:
            continue
        holder = _read_holder(ralph_dir(tree) / LOCK)
        try:
            alive = os.kill(int(json.loads(holder)["pid"]), 0) is None
        except (ValueError, KeyError, TypeError, OSError):
            alive = False
        if alive:
            found.append(f"{tree}: {_describe(holder)}")
    return "; ".join(found) or "holder unknown"


def legacy_evidence_matches(evidence: list[Evidence], checks: list[Check]) -> bool:
    """Whether evidence recorded without check hashes still describes `checks`: same names in the
    same order, the same commands (seeds substituted) and, for gates, the same file, key, op and
    threshold as its detail line states them. Timeouts were never recorded, so they cannot count."""
    if [e.check for e in evidence] != [c.name for c in checks]:
        return False
    return all(_legacy_match(e, c) for e, c in zip(evidence, checks))


def _legacy_match(e: Evidence, c: Check) -> bool:
    seeds = c.seeds or [None]
    if c.run is not None:
        return e.kind == "run" and e.command == " && ".join(seeded(c.run, s) for s in seeds)
    gate = c.metric
    if gate is None:
        return False  # a comparison: ralph recorded none before it hashed its checks
    agg = "" if c.seeds is None else f"{c.agg or 'mean'}({gate.key})"
    return (e.kind == "metric" and set(e.sources) == {seeded(gate.file, s) for s in seeds}
            and gate.key in e.figures and e.detail.startswith(agg) and e.detail.endswith(f" {gate.op} {gate.value:g}"))


def _legacy_dependencies(reason: str | None) -> list[str]:
    """The dependencies named by a block recorded before `blocked_by` existed ("depends on A, B, which is not
    passing"), else none."""
    match = re.fullmatch(r"depends on (.+), which is not passing", reason or "")
    return match.group(1).split(", ") if match else []


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on {info['host']} running `{info['command']}` since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
