"""Blocks: what a block says, and how one is lifted by a person.

The loop blocks a feature (loop.PhaseRunner.work_on) when its attempts are used up, when two attempts in
a row changed nothing, when the same failure came twice, or when a dependency is not passing. The reason
names what keeps it from passing (`failing_checks`: "gate 'accuracy' acc = 0.9507, needs >= 0.99"), so
the board, the report and progress.txt say what to do about it.

A block lifts by itself when its cause is gone (books.ledger.Ledger.lift: the dependencies pass, or the
feature's checks changed in PRD.json); any other block is lifted by a person with `ralph unblock ID`
(`unblock`), which is recorded in progress.txt.
"""

from __future__ import annotations

from harness.books.git.repo import head_sha
from harness.books.progress import LogEntry
from harness.books.records import Evidence
from harness.errors import RalphError
from harness.project import Project

_KIND_NAMES = {"metric": "gate", "compare": "comparison", "run": "check", "guard": "guard"}


def failing_checks(evidence: list[Evidence]) -> str:
    """The failing checks, each named with its kind and what it found: "gate 'accuracy' acc = 0.9507,
    needs >= 0.99; check 'tests' exit 1"; "no check failed" when none did."""
    failing = [f"{_KIND_NAMES.get(e.kind, e.kind)} '{e.check}' {e.detail}" for e in evidence if not e.passed]
    return "; ".join(failing) or "no check failed"


def unblock(project: Project, feature_id: str, *, by: str, note: str = "") -> str:
    """Lift a feature's block for another round of attempts (counted afresh), recorded in progress.txt;
    returns the reason it was blocked. Raises RalphError (naming its status) for a feature that is not blocked."""
    feature = project.prd.feature(feature_id)
    state = project.ledger.feature(feature.id)
    if state.status != "blocked":
        raise RalphError(f"{feature.id} is {state.status}, not blocked: nothing to lift (`ralph status` shows why "
                         "each feature is where it is)")
    reason = state.blocked_reason or "blocked"
    project.ledger.unblock(feature.id)
    fields = {"by": by, "was blocked": reason, **({"note": note} if note else {})}
    project.progress.append(LogEntry(kind="unblocked", subject=feature.id, phase=feature.phase, fields=fields,
                                     commit=head_sha(project.repo)))
    return reason
