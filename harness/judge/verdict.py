"""Recording a feature's verdict: one function that every path uses (`ralph verify`, an attempt, jobs).

A verdict lands in four places, always together and in this order: `passes` in PRD.json (before
the commit, so the commit carries it), the commit of the verified tree (when asked and passing),
the feature's record in the ledger, and one progress.txt entry. A commit that git refuses is
failing evidence, never an exception that would leave `passes` written without a record. An
attempt's verdict then joins the history of attempts (books/attempts.py), with the commit that
holds the tree it was judged on: ralph's commit, or for a failed attempt a kept one (git/kept.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import git

from harness.books.attempts import AttemptEntry, append_attempt, keep_plots
from harness.books.git.commits import CommitResult
from harness.books.git.kept import keep_attempt
from harness.books.git.repo import VCSError, head_sha
from harness.books.git.trees import candidate
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

    @property
    def attempt(self) -> int | None:
        """The attempt's number, when this records an agent attempt."""
        number = self.fields.get("attempt", "")
        return int(number) if self.kind == "attempt" and number.isdigit() else None


@dataclass(frozen=True)
class Judged:
    """The tree a verdict judged (written to git's object store) and the commit it started from."""

    base: str | None
    tree: str
    plots: tuple[str, ...] = ()  # the images the checks wrote (repository-relative): copies go with the record


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
                   fields: dict[str, str] | None = None, judged: Judged | None = None) -> FeatureVerdict:
    """Record `evidence` as `feature`'s verdict everywhere (see the module docstring).

    `commit` makes the commit when every check passed; its sha is stamped on the evidence. Without a
    commit, the evidence keeps `commit_of_evidence` (the commit the checks ran at) when given.
    `fields` are added to the progress entry after the occasion's own and the status. `judged`: the tree
    the checks ran on (default: the working tree's candidate now), kept with an attempt's record.
    """
    before = head_sha(project.repo) if occasion.attempt is not None else None  # an attempt's commit's parent
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
    if occasion.attempt is not None:
        record_attempt(project, feature, evidence, occasion, status, result.sha if result else None,
                       judged or Judged(before, ""), before)
    return FeatureVerdict(feature, evidence, status, result)


def record_attempt(project: Project, feature: Feature, evidence: list[Evidence], occasion: Occasion, status: str,
                   committed: str | None, judged: Judged, head_before: str | None) -> None:
    """Append the attempt to the history: with ralph's commit when it made one (its diff is what landed),
    else with its judged tree kept as a commit off the branch. A tree git cannot keep leaves the record
    without a commit and says why; the verdict stands either way."""
    number = occasion.attempt
    assert number is not None
    base, commit, why = judged.base, committed, None
    if committed:
        base = head_before
    else:
        try:
            tree = judged.tree or candidate(project.repo).tree
            commit = keep_attempt(project.repo, feature.id, number, tree, base)
        except (VCSError, git.GitCommandError) as e:
            why = str(e)
    agent = occasion.agent
    plots = keep_plots(project.repo, feature.id, number, judged.plots)
    append_attempt(project.repo, AttemptEntry(
        feature=feature.id, attempt=number, status=status, agent=agent.get("agent"), model=agent.get("model"),
        agent_status=occasion.fields.get("agent status"), turns=agent.get("turns"), tokens=agent.get("tokens") or 0,
        cost_usd=agent.get("cost_usd") or 0.0, agent_s=agent.get("duration_s"),
        checks_s=round(sum(e.duration_s for e in evidence), 3), evidence=evidence, base=base, commit=commit, kept=why,
        plots=plots))
