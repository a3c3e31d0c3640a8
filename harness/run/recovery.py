"""Start-up after a crash: finish the books on an attempt that was in flight when ralph died.

Before the agent starts, the loop writes `.ralph/attempt.json`: the feature and attempt number,
the start commit and refs, the protected-path snapshot (contents included), and the mark that
every process of the attempt carries in its environment (`RALPH_ATTEMPT`). It is removed once
the attempt is recorded. If ralph is killed (`kill -9`, a power cut) in between, the next
`ralph run` or `ralph verify` finds it and, before the PRD is even read:

1. kills what is left of the attempt (every process with the mark: an agent ralph no longer
   supervises);
2. reconciles: when a commit on the branch already carries the attempt's trailers, the attempt
   had passed and been committed, so the ledger records that commit and nothing is committed
   again; otherwise the protected paths and refs are put back as they were before the attempt
   (a gate the agent lowered does not survive the crash);
3. records the attempt in progress.txt (interrupted, or reconciled) and gives an interrupted
   attempt back to the feature (a crash is not the agent's failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import git

from harness.books.git.commits import find_attempt_commit
from harness.books.git.refs import Refs, check_refs
from harness.books.git.repo import open_repo, tree_fingerprint
from harness.books.layout import HARNESS_FILES
from harness.books.ledger import clear_inflight, read_inflight, write_left_tree
from harness.books.progress import LogEntry, ProgressLog
from harness.books.records import Evidence
from harness.project import Project
from harness.sandbox import guards
from harness.sandbox.proc import kill_processes, processes_with_env

MARK = "RALPH_ATTEMPT"  # environment variable every process of an attempt inherits


@dataclass
class Recovered:
    """What start-up found of a crashed attempt and did about it."""

    feature: str
    attempt: int
    commit: str | None  # the attempt's own commit, when it had got that far
    killed: int = 0
    restored: list[str] = field(default_factory=list)


def recover_tree(repo: Path) -> Recovered | None:
    """Steps 1–2 for an unfinished attempt (None when there is none); run before the PRD is loaded."""
    record = read_inflight(repo)
    if record is None:
        return None
    leftovers = processes_with_env(MARK, record["mark"])
    kill_processes(leftovers)
    snapshot = guards.Snapshot.from_json(record["snapshot"])
    refs = Refs.from_json(record["refs"])
    commit = find_attempt_commit(repo, refs.sha, record["feature"], record["attempt"])
    if commit:  # ralph's own commit stands: the refs and the PRD as committed are the baseline now
        refs = Refs(refs.head, commit, refs.tags)
        snapshot = snapshot.without(*HARNESS_FILES)
        try:
            committed_prd = open_repo(repo).git.show(f"{commit}:PRD.json", strip_newline_in_stdout=False)
            (repo / "PRD.json").write_text(committed_prd, encoding="utf-8")
        except git.GitCommandError:  # PRD.json is not tracked: nothing to take from the commit
            pass
    elif ProgressLog(repo).problem() is None:  # progress.txt is as ralph wrote it: keep its entries
        snapshot = snapshot.without("progress.txt")
    restored = guards.check_and_restore(repo, snapshot) + check_refs(repo, refs)[0]
    return Recovered(record["feature"], int(record["attempt"]), commit, len(leftovers), restored)


def record_recovery(project: Project, found: Recovered) -> None:
    """Step 3: the ledger and progress.txt learn what happened; the in-flight record goes."""
    ledger, feature = project.ledger, project.prd.feature(found.feature)
    fields = {"attempt": str(found.attempt), "killed leftover processes": str(found.killed)}
    if found.restored:
        fields["restored"] = ", ".join(found.restored)
    if found.commit:
        message = open_repo(project.repo).commit(found.commit).message
        checks = next((line.split(": ", 1)[1] for line in str(message).splitlines()
                       if line.startswith("Ralph-Checks: ")), "")
        evidence = [Evidence(check=item.split("=")[0], kind="guard", verdict="pass", duration_s=0.0, commit=found.commit,
                             detail=f"from the trailers of {found.commit[:10]} (ralph stopped before recording it)")
                    for item in checks.split(", ") if item.endswith("=pass")]
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
