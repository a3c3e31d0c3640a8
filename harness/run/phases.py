"""Where a plan stands, phase by phase: each phase's status from its features, exit checks and decision,
and which phase `ralph run` works on when none is named."""

from __future__ import annotations

from typing import Any

from harness.books.ledger import PhaseState
from harness.errors import RalphError
from harness.plan.prd import Phase
from harness.project import Project


def exit_results(phase: Phase, state: PhaseState) -> tuple[list[dict[str, str]], bool | None]:
    """The phase's exit checks as rows (check, verdict, detail) and whether they all passed (None: some
    not run). Evidence counts only for the check as it is now (the same digest), or legacy evidence by name."""
    digests = {c.name: c.digest for c in phase.exit}
    recorded = {e.check: e for e in state.exit_evidence if e.check_sha256 in (None, digests.get(e.check))}
    rows = [{"check": c.name, "verdict": recorded[c.name].verdict if c.name in recorded else "not run",
             "detail": recorded[c.name].detail if c.name in recorded else ""} for c in phase.exit]
    ok = all(r["verdict"] == "pass" for r in rows) if all(r["verdict"] != "not run" for r in rows) else None
    return rows, ok


def phase_status(features: list[dict[str, Any]], exit_ok: bool | None, decision: str | None,
                  approval_required: bool) -> str:
    statuses = [f["status"] for f in features]
    if decision:
        return decision
    if not features:
        return "planned"
    if all(s == "passing" for s in statuses):
        if exit_ok is None:
            return "exit checks pending"
        if exit_ok:
            return "awaiting approval" if approval_required else "done"
    if "blocked" in statuses:
        return "blocked"
    if any(s != "pending" for s in statuses) or any(f["attempts"] for f in features) or exit_ok is False:
        return "in progress"
    return "not started"


def next_phase(project: Project) -> Phase:
    """The first phase (in PRD order) with work left: not approved, not done, and not empty (planned)."""
    for phase in project.prd.phases:
        state = project.ledger.phase(phase.id)
        features = [{"status": fs.status, "attempts": fs.attempts}
                    for fs in (project.ledger.feature(f.id) for f in project.prd.features_in_phase(phase.id))]
        decision = state.decision.decision if state.decision else None
        if phase_status(features, exit_results(phase, state)[1], decision, phase.approval) not in (
                "approved", "done", "planned"):
            return phase
    raise RalphError("every phase with features is done; add features to a later phase, or pass --phase N")
