"""The human gate between phases: recording approve / reject decisions (the request files a run leaves for a
person are books/requests.py).

A decision lands in three places — `.ralph/state.json`, progress.txt and a git tag
(`ralph/phase-<id>-approved` or `-rejected`) — and approval is refused while the phase's exit
criteria (every feature passing, every exit check passing at the current commit) do not hold.
"""

from __future__ import annotations

from harness.books.git.refs import tag_phase_approved, tag_phase_rejected
from harness.books.git.repo import head_sha
from harness.books.ledger import Decision
from harness.books.progress import LogEntry
from harness.books.records import Evidence
from harness.books.requests import request_path
from harness.errors import ExitCode, RalphError
from harness.judge.checks import Reporter
from harness.judge.verify import verify_exit
from harness.plan.prd import Phase
from harness.project import Project


class ApprovalRefused(RalphError):
    """The phase's exit criteria do not pass; `failures` lists what is missing."""

    exit_code = ExitCode.FAILED

    def __init__(self, phase: Phase, failures: list[str]):
        self.failures = failures
        items = "\n".join(f"  - {f}" for f in failures)
        super().__init__(f"phase {phase.id} ({phase.name}) cannot be approved; its exit criteria fail:\n{items}")


def exit_failures(project: Project, phase: Phase, exit_evidence: list[Evidence]) -> list[str]:
    """What keeps the phase from meeting its exit criteria (empty when it meets them)."""
    failures = []
    for f in project.prd.features_in_phase(phase.id):
        fs = project.ledger.feature(f.id)
        if fs.status != "passing":
            failed = [e for e in fs.last_evidence if not e.passed]
            why = (fs.stale_reason or "; ".join(f"{e.check}: {e.detail}" for e in failed) or fs.blocked_reason
                   or "not verified yet")
            failures.append(f"{f.id} ({f.title}) is {fs.status}: {why}")
        elif fs.legacy:
            failures.append(f"{f.id} ({f.title}) passed before checks were hashed, so its evidence is not bound to "
                            f"the current checks: `ralph verify {f.id}` first")
    failures += [f"exit check '{e.check}': {e.verdict}, {e.detail}" for e in exit_evidence if not e.passed]
    return failures


def current_exit_evidence(project: Project, phase: Phase, reporter: Reporter | None) -> list[Evidence]:
    """The phase's exit evidence, re-running the checks unless all passed at the current HEAD for the
    exit checks exactly as they are now (the same digests)."""
    recorded = project.ledger.phase(phase.id).exit_evidence
    fresh = (
        sorted(e.check_sha256 or "" for e in recorded) == sorted(c.digest for c in phase.exit)
        and all(e.passed and e.commit == head_sha(project.repo) for e in recorded)
    )
    return recorded if fresh else verify_exit(project, phase, reporter=reporter)


def approve(project: Project, phase_id: int, by: str, note: str = "", *,
            reporter: Reporter | None = None) -> Decision:
    """Record approval (state, progress.txt, tag), or raise `ApprovalRefused` listing the failures."""
    phase = project.prd.phase(phase_id)
    project.progress.audit()
    features_ok = not exit_failures(project, phase, [])
    evidence = current_exit_evidence(project, phase, reporter) if features_ok else []
    failures = exit_failures(project, phase, evidence)
    if failures:
        raise ApprovalRefused(phase, failures)
    return _decide(project, phase, Decision(decision="approved", by=by, note=note, commit=head_sha(project.repo)))


def reject(project: Project, phase_id: int, by: str, reason: str) -> Decision:
    phase = project.prd.phase(phase_id)
    project.progress.audit()
    return _decide(project, phase, Decision(decision="rejected", by=by, note=reason, commit=head_sha(project.repo)))


def _decide(project: Project, phase: Phase, decision: Decision) -> Decision:
    message = f"phase {phase.id} ({phase.name}) {decision.decision} by {decision.by}"
    if decision.note:
        message += f": {decision.note}"
    tag = (tag_phase_approved if decision.decision == "approved" else tag_phase_rejected)(
        project.repo, phase.id, message
    )
    project.ledger.record_decision(phase.id, decision)
    fields = {"by": decision.by, ("note" if decision.decision == "approved" else "reason"): decision.note,
              "tag": tag}
    project.progress.append(LogEntry(kind=decision.decision, subject=f"phase {phase.id}", phase=phase.id,
                                  fields={k: v for k, v in fields.items() if v}, commit=decision.commit))
    request_path(project.repo, phase.id).unlink(missing_ok=True)
    return decision
