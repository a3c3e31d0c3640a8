"""One measurement: a feature's checks on a candidate tree for a set of seeds, and the metric read per seed.

The judge does the work, by its own rules (judge/checktree.py: a clean checkout of the candidate tree, the
protected paths from the baseline, the metric files set aside so only these runs can write them). What a
search adds: the seeded checks run for the search's seeds (`reseeded`), each run stopped at the trial's
compute budget, the holdout paths withheld from the visible checks, and then, apart, the holdout run. A check with
`"executor": "ray"` runs as one Ray job per seed, waited for (`RayRuns`); the compute the runs took is recorded.
Anything that fails — a check, an unreadable metric, a holdout run — is a crash, never an exception
(fails closed).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.books.git.repo import ignored_dirs
from harness.books.git.trees import Candidate
from harness.books.records import Evidence, JobRecord
from harness.judge.checks import MetricProblem, Reads, Reporter
from harness.judge.checktree import run_in_check_tree
from harness.judge.jobs import run_to_end
from harness.optimize.board import optimize_dir
from harness.plan.prd import Check, Feature, Optimize, Source, seeded
from harness.project import Project
from harness.sandbox import guards
from harness.settings import check_python, load_settings


@dataclass
class Measurement:
    """What the checks said and the metric per seed (empty on a crash, with `crash` saying why)."""

    per_seed: dict[int, float] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    candidate: Candidate | None = None
    outputs: list[str] = field(default_factory=list)
    crash: str | None = None
    holdout: float | None = None
    compute_hours: float = 0.0  # the visible runs' own time, summed over seeds (Ray: the jobs' run times)
    gpu_hours: float = 0.0  # GPUs reserved by its Ray jobs × their run times


def jobs_dir(repo: Path, feature_id: str) -> Path:
    """`.ralph/optimize/<feature>/jobs/`: one empty file per Ray job of a measurement in flight, named by its id and
    written before it is submitted, so that the jobs of a ralph killed meanwhile are stopped when the search
    resumes."""
    return optimize_dir(repo, feature_id) / "jobs"


@dataclass
class RayRuns:
    """The Ray checks of one measurement, each run to its end (jobs.run_to_end) on the candidate tree of the working
    tree at `into`, their returned files written there; the jobs are kept for the compute they took, and named in
    `jobs_dir` while they run."""

    project: Project
    feature: Feature
    into: Path
    baseline: guards.Snapshot
    attempt: int
    log_dir: Path
    labels: Mapping[str, str]
    withheld: Sequence[str]
    jobs: list[JobRecord] = field(default_factory=list)

    def __call__(self, check: Check, tree: str) -> tuple[Evidence, list[str]]:
        marks = jobs_dir(self.project.repo, self.feature.id)
        named: list[str] = []

        def recorded(jobs: list[JobRecord]) -> None:
            marks.mkdir(parents=True, exist_ok=True)
            for job in jobs:
                (marks / job.id).touch()
                named.append(job.id)

        try:
            evidence, written, jobs = run_to_end(self.project, self.feature, check, tree, into=self.into,
                                                 baseline=self.baseline, attempt=self.attempt, log_dir=self.log_dir,
                                                 labels=self.labels, withheld=self.withheld, recorded=recorded)
        finally:  # ended, or stopped by run_to_end: only a killed ralph leaves its jobs named
            for job_id in named:
                (marks / job_id).unlink(missing_ok=True)
        self.jobs += jobs
        return evidence, written


def reseeded(checks: Sequence[Check], seeds: Sequence[int], timeout_s: float | None) -> list[Check]:
    """`checks` with every seeded check run for `seeds` (the search's, not the ones written in the check), and each
    run check's time limit capped at `timeout_s` (the trial's compute budget) when given."""
    out = []
    for c in checks:
        update: dict[str, object] = {"seeds": list(seeds)} if c.seeds else {}
        if timeout_s is not None and c.run is not None:
            update["timeout_s"] = min(timeout_s, c.timeout_s or timeout_s)
        out.append(c.model_copy(update=update))
    return out


def metric_paths(source: Source, seeds: Sequence[int]) -> list[str]:
    return list(dict.fromkeys(seeded(source.file, s) for s in seeds))


def read_values(repo: Path, source: Source, seeds: Sequence[int]) -> dict[int, float]:
    """The number `source` names for each seed (raises MetricProblem)."""
    reads = Reads(repo)
    return {s: reads.value(source, s) for s in seeds}


def _failed(evidence: Sequence[Evidence]) -> str | None:
    bad = [e for e in evidence if not e.passed]
    return "; ".join(f"check '{e.check}' {e.verdict}: {e.detail}" for e in bad[:3]) or None


def _common(project: Project, baseline: guards.Snapshot, shared: Sequence[str], protected: Sequence[str],
            reporter: Reporter | None, labels: Mapping[str, str]) -> dict[str, object]:
    """What every check tree of a search shares: the project's environment, limits and interpreter."""
    d = project.prd.defaults
    return dict(environment=project.environment, baseline=baseline, shared=shared, protected=protected,
                env_allow=d.env_allow, default_timeout_s=d.check_timeout_s, reporter=reporter, labels=labels,
                python=check_python(project.repo, load_settings(project.repo).python),
                outputs=project.prd.output_dirs(), network=d.check_network)


def measure(project: Project, feature: Feature, seeds: Sequence[int], *, tree: Path, baseline: guards.Snapshot,
            shared: Sequence[str], log_dir: Path, reporter: Reporter | None, labels: Mapping[str, str],
            holdout: bool, protected: Sequence[str], attempt: int = 0) -> Measurement:
    """Run `feature`'s checks on the candidate tree of the working tree at `tree` for `seeds` (the holdout paths
    withheld; Ray checks as jobs of `attempt`, 0 for the baseline and the confirmation), read the search's metric
    per seed, and, with `holdout`, run the holdout and read its figure (the mean over the seeds it ran for).
    `protected`: the search's protected globs (the plan's, the fixed paths)."""
    opt = feature.optimize
    assert opt is not None
    timeout = opt.budget.trial_hours * 3600 if opt.budget.trial_hours else None
    checks = reseeded(feature.verify, seeds, timeout)
    hidden = opt.holdout.paths if opt.holdout else []
    aside = list(dict.fromkeys([p for c in checks for p in c.read_files()] + metric_paths(opt.metric, seeds)))
    common = _common(project, baseline, shared, protected, reporter, labels)
    ray = RayRuns(project, feature, tree, baseline, attempt, log_dir, labels, hidden)
    run = run_in_check_tree(tree, checks, log_dir=log_dir, set_aside=aside, withheld=hidden, ray=ray,  # type: ignore[arg-type]
                            **common)
    here = sum(e.duration_s for c, e in zip(checks, run.evidence) if c.run is not None and not c.on_ray)
    ended = time.time()
    found = Measurement(evidence=run.evidence, candidate=run.candidate, outputs=run.outputs,
                        compute_hours=(here + sum(j.elapsed_s(ended) for j in ray.jobs)) / 3600,
                        gpu_hours=sum(j.gpu_hours for j in ray.jobs))
    found.crash = _failed(run.evidence)
    if found.crash:
        return found
    try:
        found.per_seed = read_values(tree, opt.metric, seeds)
    except MetricProblem as p:
        found.crash = f"the search's metric: {p}"
        return found
    if holdout and opt.holdout is not None:
        found.holdout, problem = _holdout(tree, opt, seeds, log_dir / "holdout", common)
        if problem:
            found.crash = f"the holdout: {problem}"
    return found


def holdout_figure(project: Project, feature: Feature, seeds: Sequence[int], *, tree: Path, baseline: guards.Snapshot,
                   shared: Sequence[str], log_dir: Path, reporter: Reporter | None, labels: Mapping[str, str],
                   protected: Sequence[str]) -> tuple[float | None, str | None]:
    """The holdout alone, after `measure` (whose outputs it reads): (figure, None) or (None, what went wrong)."""
    assert feature.optimize is not None
    return _holdout(tree, feature.optimize, seeds, log_dir, _common(project, baseline, shared, protected, reporter,
                                                                     labels))


def _holdout(tree: Path, opt: Optimize, seeds: Sequence[int], log_dir: Path,
             common: Mapping[str, object]) -> tuple[float | None, str | None]:
    """(the holdout figure, None) or (None, what went wrong): the holdout run on the same candidate tree, now with
    the holdout paths, after the visible checks (whose outputs it reads); what it wrote is removed afterwards."""
    assert opt.holdout is not None
    h = opt.holdout
    per_seed = "{seed}" in h.run or "{seed}" in h.metric.file or "{seed}" in h.metric.key
    check = Check(name="holdout", run=h.run, seeds=list(seeds) if "{seed}" in h.run else None)
    read_seeds = list(seeds) if per_seed else [None]
    aside = list(dict.fromkeys(seeded(h.metric.file, s) for s in read_seeds))
    # the visible runs' outputs (a folder they created) are linked in like every ignored folder
    shared = ignored_dirs(tree)
    run = run_in_check_tree(tree, [check], log_dir=log_dir, set_aside=aside,  # type: ignore[arg-type]
                            **{**common, "shared": shared})
    try:
        if problem := _failed(run.evidence):
            return None, problem
        reads = Reads(tree)
        values = [reads.value(h.metric, s) for s in read_seeds]
    except MetricProblem as p:
        return None, str(p)
    finally:  # what the holdout run wrote stays out of the tree the next trial's agent sees
        for rel in run.outputs:
            (tree / rel).unlink(missing_ok=True)
            for parent in Path(rel).parents[:-1]:  # and the folders it made, once empty
                if not any((tree / parent).iterdir()):
                    (tree / parent).rmdir()
    return sum(values) / len(values), None
