"""Start-up after a crash: finish the books on an attempt that was in flight when ralph died.

Before the agent starts, the loop writes `.ralph/attempt.json`: the feature and attempt number,
the start commit and refs, the protected-path snapshot (contents included), and the mark that
every process of the attempt carries in its environment (`RALPH_ATTEMPT`). It is removed once
the attempt is recorded. If ralph is killed (`kill -9`, a power cut) in between, the next
`ralph run` or `ralph verify` finds it and, before the PRD is even read:

1. kills what is left of the attempt (every process with the mark: an agent ralph no longer
   supervises);
2. reconciles: when the in-flight record names ralph's own commit (written, synced, before ralph
   moved the branch: `ledger.note_inflight_commit`) and that commit is on the branch, the attempt
   had passed and been committed, so the ledger records that commit with the evidence the record
   holds, and nothing is committed again. Any other commit is the agent's, whatever its message
   says: the branch goes back. The protected paths are put back as they were before the attempt,
   PRD.json included (a gate the agent lowered does not survive the crash; it is never taken from a
   commit), and `passes` is then written for the adopted commit's feature;
3. records the attempt in progress.txt (interrupted, or reconciled) and gives an interrupted
   attempt back to the feature (a crash is not the agent's failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.books.git.refs import Refs, check_refs, on_branch
from harness.books.git.repo import tree_fingerprint
from harness.books.layout import PROGRESS_FILE
from harness.books.ledger import MARK, clear_inflight, read_inflight, write_left_tree
from harness.books.progress import LogEntry, ProgressLog
from harness.books.records import Evidence
from harness.project import Project
from harness.sandbox import guards
from harness.sandbox.proc import kill_processes, processes_with_env


@dataclass
class Recovered:
    """What start-up found of a crashed attempt and did about it."""

    feature: str
    attempt: int
    commit: str | None  # the attempt's own commit, when it had got that far
    killed: int = 0
    restored: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)  # what ralph's commit was made on (its own record)


def recover_tree(repo: Path) -> Recovered | None:
    """Steps 1–2 for an unfinished attempt (None when there is none); run before the PRD is loaded."""
    record = read_inflight(repo)
    if record is None:
        return None
    leftovers = processes_with_env(MARK, record["mark"])
    kill_processes(leftovers)
    snapshot = guards.Snapshot.from_json(record["snapshot"])
    refs = Refs.from_json(record["refs"])
    commit = record.get("commit")
    if commit and not on_branch(repo, commit, record.get("tree", "")):
        commit = None  # ralph died before moving the branch to it: the attempt did not finish
    evidence = [Evidence.model_validate(e) for e in record.get("evidence", [])] if commit else []
    if commit:  # ralph's own commit stands: the branch is kept at it (anything on top is put back)
        refs = Refs(refs.head, commit, refs.tags)
    if ProgressLog(repo).problem() is None:  # progress.txt is as ralph wrote it: keep its entries
        snapshot = snapshot.without(PROGRESS_FILE)
    restored = guards.check_and_restore(repo, snapshot) + check_refs(repo, refs)[0]
    return Recovered(record["feature"], int(record["attempt"]), commit, len(leftovers), restored, evidence)


def record_recovery(project: Project, found: Recovered) -> None:
    """Step 3: the ledger and progress.txt learn what happened; the in-flight record goes."""
    ledger, feature = project.ledger, project.prd.feature(found.feature)
    fields = {"attempt": str(found.attempt), "killed leftover processes": str(found.killed)}
    if found.restored:
        fields["restored"] = ", ".join(found.restored)
    if found.commit:
        evidence = [e.model_copy(update={"commit": found.commit}) for e in found.evidence]
        project.write_passes({feature.id: True})
        status = ledger.record_verification(feature.id, evidence, found.commit)
        project.progress.append(LogEntry(kind="attempt", subject=feature.id, phase=feature.phase,
                                      fields={**fields, "verdict": "pass", "status": status,
                                              "reconciled": "its commit was already made; not committed again"},
                                      checks=evidence, commit=found.commit))
    else:
        ledger.refund_attempt(feature.id)
        project.progress.append(LogEntry(kind="interrupted", subject=feature.id, phase=feature.phase,
                                      fields={**fields, "during": "ralph stopped (killed) mid-attempt",
                                              "attempts": "not counted"}))
    write_left_tree(project.repo, tree_fingerprint(project.repo))  # the agent's work so far is not a dirty tree
    clear_inflight(project.repo)


def open_project(repo: Path | str, prd_path: Path | str | None = None) -> Project:
    """`Project.open`, after finishing the books on a crashed attempt; call it holding the repo lock."""
    found = recover_tree(Path(repo).resolve())
    project = Project.open(repo, prd_path)
    if found is not None:
        record_recovery(project, found)
    return project
