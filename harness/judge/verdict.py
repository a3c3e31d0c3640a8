"""Recording a feature's verdict: one function that every path uses (`ralph verify`, an attempt, jobs).

A verdict lands in four places, always together and in this order: `passes` in PRD.json (before
the commit, so the commit carries it), the commit of the verified tree (when asked and passing),
the feature's record in the ledger, and one progress.txt entry. A commit that git refuses is
failing evidence, never an exception that would leave `passes` written without a record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.books.git.commits import CommitResult
from harness.books.git.repo import VCSError, head_sha
from harness.books.ledger import FeatureStatus
from harness.books.progress import LogEntry
from harness.books.records import Evidence, all_passed
from harness.plan.prd import Feature
from harness.project import Project


@dataclass(frozen=True)
class Occasion:
    """Why a verdict is being recorded, as its progress.txt entry says: `kind` ("verify", "attempt"),
    extra `fields` (attempt number, agent status, ...) and the agent's usage for an attempt
    (`agent`: agent, model, turns, tokens, cost_usd, duration_s, summary)."""

    kind: str = "verify"
    fields: dict[str, str] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeatureVerdict:
    feature: Feature
    evidence: list[Evidence]
    status: FeatureStatus
    commit: CommitResult | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all_passed(self.evidence)


def tampering(changed: Sequence[str], when: str) -> Evidence:
    """The guard's failed evidence: what was changed, and that it was put back."""
    return Evidence(check="protected paths", kind="guard", verdict="fail", duration_s=0.0,
                    detail=f"tampering {when}: {', '.join(changed)} changed; restored")


def record_verdict(project: Project, feature: Feature, evidence: list[Evidence], occasion: Occasion, *,
                   commit: Callable[[], CommitResult] | None = None, commit_of_evidence: str | None = None,
                   fields: dict[str, str] | None = None) -> FeatureVerdict:
    """Record `evidence` as `feature`'s verdict everywhere (see the module docstring).

    `commit` makes the commit when every check passed; its sha is stamped on the evidence. Without a
    commit, the evidence keeps `commit_of_evidence` (the commit the checks ran at) when given.
    `fields` are added to the progress entry after the occasion's own and the status.
    """
    evidence = list(evidence)
    passed = all_passed(evidence)
    if feature.passes != passed:
        project.write_passes({feature.id: passed})
    result = None
    if passed and commit is not None:
        try:
            result = commit()
        except VCSError as e:
            evidence.append(Evidence(check="commit", kind="guard", verdict="fail", detail=str(e), duration_s=0.0))
            project.write_passes({feature.id: False})
    stamp = result.sha if result else commit_of_evidence
    if stamp is not None:
        for e in evidence:
            e.commit = stamp
    sha = result.sha if result else head_sha(project.repo)
    status = project.ledger.record_verification(feature.id, evidence, commit=sha)
    entry_fields = {**occasion.fields, "status": status, **(fields or {})}
    if result and result.skipped:
        entry_fields["not committed"] = "; ".join(f"{p} ({why})" for p, why in result.skipped)
    project.progress.append(LogEntry(kind=occasion.kind, subject=feature.id, phase=feature.phase,
                                     fields=entry_fields, checks=evidence, commit=sha, **occasion.agent))
    return FeatureVerdict(feature, evidence, status, result)
