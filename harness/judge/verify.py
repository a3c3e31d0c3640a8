"""Verifying a feature or a phase's exit criteria: the harness runs the checks, never the agent.

This is where `passes` comes from: the checks run here and their evidence is recorded by
verdict.record_verdict (PRD.json, the commit, the ledger, progress.txt). `ralph verify` calls it
directly; the loop calls it after each agent attempt.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.books.git.commits import CommitResult, commit_feature
from harness.books.git.refs import Refs, check_refs, read_refs
from harness.books.git.repo import head_sha, open_repo, require_branch
from harness.books.ledger import note_inflight_commit
from harness.books.progress import LogEntry
from harness.books.records import Evidence, all_passed
from harness.errors import RalphError
from harness.judge import jobs
from harness.judge.checks import Reporter, plan_labels
from harness.judge.checktree import check_candidate, check_phase
from harness.judge.freshness import metric_files
from harness.judge.verdict import FeatureVerdict, Judged, Occasion, record_verdict, tampering
from harness.plan.prd import PRD, Feature, Phase
from harness.project import Project
from harness.sandbox import guards


def verify_feature(
    project: Project,
    feature: Feature,
    *,
    commit: bool = False,
    reporter: Reporter | None = None,
    occasion: Occasion = Occasion(),
    baseline: guards.Snapshot | None = None,
    refs: Refs | None = None,
    shared: Sequence[str] | None = None,
    wait: bool = True,
) -> FeatureVerdict:
    """Run a feature's checks and record the verdict (verdict.record_verdict); commit the tree when asked
    and passing.

    The checks run on the candidate tree (checktree.py) with the protected paths of `baseline`
    (default: as they are now). After them, the protected paths and `refs` (default: as they are
    now) are compared again and put back; any change fails the feature as tampering, and nothing
    is committed. `occasion` heads the progress entry, so the loop records an attempt and its
    verdict as one event.

    A feature with checks on Ray submits them as jobs (harness/judge/jobs.py): with `wait` this call
    follows them to the end and records the verdict; without, it returns at once with status
    `running` and the local checks' evidence, and `jobs.collect` records the verdict later.
    """
    project.progress.audit()  # refuse before hours of checks, not after
    running = [j.id for j in project.ledger.feature(feature.id).jobs if not j.done]
    if project.ledger.feature(feature.id).status == "running":
        raise RalphError(f"{feature.id}'s checks are running as jobs ({', '.join(running)}): `ralph jobs wait` "
                         "collects them, `ralph jobs cancel ID` stops one")
    if commit:
        require_branch(open_repo(project.repo))
    baseline = baseline or project.snapshot()
    refs = refs or read_refs(project.repo)
    if jobs.job_checks(feature):  # some checks run as jobs: submitted now, recorded when they end (jobs.py)
        submitted = jobs.start(project, feature, attempt=project.ledger.feature(feature.id).attempt_serial,
                               log_dir=project.log_dir(feature.id), reporter=reporter, baseline=baseline,
                               shared=shared, occasion=occasion)
        if not submitted:
            fs = project.ledger.feature(feature.id)
            return FeatureVerdict(feature, fs.last_evidence, fs.status)
        if not wait:
            return FeatureVerdict(feature, project.ledger.feature(feature.id).pending.local_evidence, "running")
        jobs.wait(project, reporter, features=[feature.id])
        fs = project.ledger.feature(feature.id)
        return FeatureVerdict(feature, fs.last_evidence, fs.status)
    held = jobs.held_changes(project.ledger, but=feature.id)
    base = head_sha(project.repo)  # the candidate is this commit plus the working tree's changes
    run = check_candidate(project, feature.verify, project.log_dir(feature.id), reporter, baseline=baseline,
                          shared=shared, set_aside=metric_files(feature), labels=plan_labels(feature.phase, feature.id),
                          held=held, report=feature.report_figures())
    evidence = run.evidence
    moved = guards.check_and_restore(project.repo, baseline) + check_refs(project.repo, refs)[0]
    if moved:  # something outlived the checks' processes, or a check itself wrote the judge's files
        evidence = [*evidence, tampering(moved, "while the checks ran")]

    def commit_verified() -> CommitResult:
        return commit_feature(project.repo, feature, project.ledger.feature(feature.id).attempt_serial, evidence,
                              verified=run.candidate, outputs=run.outputs, held=held,
                              before_move=lambda sha, tree: note_inflight_commit(project.repo, sha, tree, evidence))

    return record_verdict(project, feature, evidence, occasion, commit=commit_verified if commit else None,
                          judged=Judged(base, run.candidate.tree, tuple(run.plots)))


def verify_exit(project: Project, phase: Phase, *, reporter: Reporter | None = None) -> list[Evidence]:
    """Run a phase's exit checks and record them (an empty list when the phase has none)."""
    if not phase.exit:
        return []
    project.progress.audit()
    evidence = check_phase(project, phase.exit, project.log_dir(f"phase-{phase.id}-exit"), reporter, plan_labels(phase.id))
    project.ledger.record_exit(phase.id, evidence)
    verdict = "pass" if all_passed(evidence) else "fail"
    project.progress.append(LogEntry(kind="phase-exit", subject=f"phase {phase.id}", phase=phase.id,
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
