"""Harness-run verification of features and phase exit criteria, and recording its outcome.

This is where `passes` comes from: the checks run here, the ledger and PRD.json are updated
from their evidence, progress.txt gets an entry, and (on request) the verified tree is committed.
`ralph verify` calls it directly; the loop calls it after each agent attempt.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks import Confine, Evidence, Reporter, all_passed, run_checks
from harness.errors import RalphError
from harness.guards import ALWAYS_PROTECTED, readonly_paths
from harness.fileio import now_iso
from harness.ledger import FeatureStatus, Ledger, ralph_dir
from harness.prd import PRD, Check, Feature, Phase, load_prd, write_passes
from harness.progress import Entry, ProgressLog
from harness.sandbox import wrap
from harness.vcs import CommitResult, commit_feature, head_sha, open_repo, require_branch


@dataclass
class Project:
    """A repository ralph works in: its validated PRD, state ledger and progress log."""

    repo: Path
    prd_path: Path
    prd: PRD
    ledger: Ledger
    progress: ProgressLog
    sandbox: str = "none"  # "bwrap" confines the checks (set by `ralph run --sandbox bwrap`)

    @classmethod
    def open(cls, repo: Path | str = ".", prd_path: Path | str | None = None) -> Project:
        """Raises PRDError / VCSError / LedgerError with an actionable message when unusable."""
        repo = Path(repo).resolve()
        open_repo(repo)
        path = Path(prd_path) if prd_path else repo / "PRD.json"
        prd = load_prd(path)
        return cls(repo, path, prd, Ledger(repo, plan=prd), ProgressLog(repo))

    def run(self, checks: list[Check], log_dir: Path, reporter: Reporter | None) -> list[Evidence]:
        d = self.prd.defaults
        with tempfile.TemporaryDirectory(prefix="ralph-check-") as scratch:
            return run_checks(checks, self.repo, env_allow=d.env_allow, default_timeout_s=d.check_timeout_s,
                              log_dir=log_dir, commit=head_sha(self.repo), reporter=reporter,
                              confine=self.confine(Path(scratch)))

    @property
    def protected(self) -> list[str]:
        """What the agent may not change: the harness's records plus the PRD's `protected` globs."""
        return list(dict.fromkeys([*ALWAYS_PROTECTED, *self.prd.defaults.protected]))

    def confine(self, scratch: Path) -> Confine | None:
        """Under `sandbox == "bwrap"`: checks see the filesystem read-only outside the repository and
        `scratch`, and the judge's files (PRD.json, .git, protected globs) read-only too."""
        if self.sandbox != "bwrap":
            return None
        readonly = readonly_paths(self.repo, self.protected)
        return lambda command: wrap(command, self.repo, scratch, network=True, readonly=readonly)

    def log_dir(self, name: str) -> Path:
        """`.ralph/runs/<timestamp>-<name>/` for full check output."""
        return ralph_dir(self.repo) / "runs" / f"{now_iso().replace(':', '')}-{name}"


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


def verify_feature(
    project: Project,
    feature: Feature,
    *,
    commit: bool = False,
    reporter: Reporter | None = None,
    entry_kind: str = "verify",
    entry_fields: dict[str, str] | None = None,
    entry_agent: dict[str, Any] | None = None,
) -> FeatureVerdict:
    """Run a feature's checks and record the result everywhere; commit the tree when asked and passing.

    `entry_fields` and `entry_agent` (agent, model, turns, tokens, cost_usd, duration_s, summary)
    go into the progress entry, so the loop records an attempt and its verdict as one event.
    """
    project.progress.verify()  # refuse before hours of checks, not after
    if commit:
        require_branch(open_repo(project.repo))
    evidence = project.run(feature.verify, project.log_dir(feature.id), reporter)
    passed = all_passed(evidence)
    if feature.passes != passed:
        write_passes(project.prd_path, {feature.id: passed})
        feature.passes = passed
    result = None
    if passed and commit:
        result = commit_feature(project.repo, feature, project.ledger.feature(feature.id).attempts, evidence)
        for e in evidence:
            e.commit = result.sha
    sha = result.sha if result else head_sha(project.repo)
    status = project.ledger.record_verification(feature.id, evidence, commit=sha)
    fields = {**(entry_fields or {}), "status": status}
    if result and result.skipped:
        fields["not committed"] = "; ".join(f"{p} ({why})" for p, why in result.skipped)
    project.progress.append(
        Entry(kind=entry_kind, subject=feature.id, phase=feature.phase, fields=fields, checks=evidence, commit=sha,
              **(entry_agent or {}))
    )
    return FeatureVerdict(feature, evidence, status, result)


def verify_exit(project: Project, phase: Phase, *, reporter: Reporter | None = None) -> list[Evidence]:
    """Run a phase's exit checks and record them (an empty list when the phase has none)."""
    if not phase.exit:
        return []
    project.progress.verify()
    evidence = project.run(phase.exit, project.log_dir(f"phase-{phase.id}-exit"), reporter)
    project.ledger.record_exit(phase.id, evidence)
    verdict = "pass" if all_passed(evidence) else "fail"
    project.progress.append(Entry(kind="phase-exit", subject=f"phase {phase.id}", phase=phase.id,
                                  fields={"verdict": verdict}, checks=evidence, commit=head_sha(project.repo)))
    return evidence


def select(prd: PRD, ids: list[str], phase_id: int | None, everything: bool) -> tuple[list[Feature], list[Phase]]:
    """Features (dependency order) and phases (for exit checks) named by `ralph verify`'s arguments."""
    if sum([bool(ids), phase_id is not None, everything]) != 1:
        raise RalphError("say what to verify, one of: feature IDs, --phase N, or --all")
    if everything:
        return prd.dependency_order(), list(prd.phases)
    if phase_id is not None:
        return prd.features_in_phase(phase_id), [prd.phase(phase_id)]
    return prd.dependency_order([prd.feature(i) for i in dict.fromkeys(ids)]), []
