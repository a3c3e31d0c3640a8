"""Checks that run as jobs: submit, follow, collect. The loop waits for them (`jobs.wait`) unless
`ralph run --no-wait`, which exits 7 and leaves them to a later `ralph run` or `ralph jobs wait`.

A feature with a `"executor": "ray"` check is verified in two halves:

1. `start`: its local `run` checks run as usual (checktree.py); each Ray check becomes one job per
   seed, written to the ledger *before* it is submitted (under a submission id ralph chose), so a
   ralph killed at any point finds it there and `submit_missing` never submits it twice (the
   cluster is asked first). The feature is `running`; its uncommitted changes stay in the tree
   and are recorded path by path (`Pending.changes`): they are its attempt's, not the user's
   (the start-up dirty-tree check) and not the next feature's (`held_changes`: another feature's
   candidate and commit leave them at HEAD's version).
2. `collect`, once every job has ended: each job's log is read, the files it returned (metric
   files, `artifacts`) are written into the repository, the metric gates read them there, and the
   verdict is recorded as any other; when it passes, HEAD plus exactly the attempt's recorded
   changes and the returned files are committed (git.commits.commit_held). A failed, stopped or timed-out
   job is failing evidence with its exit status and log tail.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.books.attempts import PLOT_SUFFIXES
from harness.books.git.commits import commit_held
from harness.books.git.repo import head_sha
from harness.books.git.trees import TreeEntry, candidate, changes_between, worktree_entry
from harness.books.layout import HARNESS_FILES
from harness.books.ledger import Ledger
from harness.books.progress import LogEntry
from harness.books.records import TERMINAL, Evidence, JobRecord, Pending, all_passed
from harness.errors import RalphError
from harness.judge.checks import Reporter, plan_labels, read_report, run_checks, with_report
from harness.judge.checktree import check_candidate, withhold
from harness.judge.executors import TAIL_BYTES, run_detail, seed_runs, slug
from harness.judge.executors.ray import (
    ClusterError,
    RayCluster,
    ResultProblem,
    apply_results,
    entrypoint,
    job_tree,
    result_block,
    strip_results,
    timed_out,
)
from harness.judge.freshness import metric_files, regenerated
from harness.judge.verdict import FeatureVerdict, Judged, Occasion, record_verdict
from harness.plan.prd import Check, Feature, seeded
from harness.project import Project
from harness.sandbox import guards
from harness.settings import load_settings

TAILS_EVERY_S = 10.0  # how often the live view re-reads the running jobs' logs for their last line
STOP_GRACE_S = 120.0  # past its timeout_s plus this, ralph stops a job whose own timer did not
_clusters: dict[str, RayCluster] = {}


def job_checks(feature: Feature) -> list[Check]:
    return [c for c in feature.verify if c.on_ray]


def cluster(project: Project) -> RayCluster:
    """The cluster `[tool.ralph.executors.ray]` / RAY_ADDRESS name (one client per address)."""
    made = RayCluster(load_settings(project.repo).executors.ray)
    return _clusters.setdefault(made.address, made)


def held_changes(ledger: Ledger, but: str | None = None) -> dict[str, TreeEntry]:
    """Every running feature's recorded changes (path -> entry), except feature `but`'s."""
    held: dict[str, TreeEntry] = {}
    for fid in ledger.running():
        pending = ledger.feature(fid).pending
        if fid != but and pending is not None:
            held.update({p: None if e is None else (e[0], e[1]) for p, e in pending.changes.items()})
    return held


def recorded(ledger: Ledger) -> list[JobRecord]:
    """Every job the ledger records, feature by feature."""
    return [j for fs in ledger.state.features.values() for j in fs.jobs]


def find(ledger: Ledger, job_id: str) -> JobRecord:
    """The ledger's record of job `job_id` (a unique prefix will do)."""
    found = [j for j in recorded(ledger) if j.id.startswith(job_id)]
    if len(found) != 1:
        known = ", ".join(j.id for j in recorded(ledger)) or "none"
        raise RalphError(f"{'no' if not found else 'more than one'} job matches '{job_id}' (known: {known}); "
                         "`ralph jobs` lists them")
    return found[0]


def as_they_are(project: Project) -> list[JobRecord]:
    """Every recorded job, those still running as the cluster reports them now. Shown, not saved: the run
    that owns them records what they did."""
    records = recorded(project.ledger)
    if any(not j.done for j in records):
        ray = cluster(project)
        for j in records:
            info = None if j.done else ray.info(j.id)
            if info is not None:
                j.state, j.started_at, j.ended_at = info.state, info.started_at or j.started_at, info.ended_at
    return records


def own_paths(project: Project) -> set[str]:
    """Uncommitted paths that are exactly as a running feature's attempt left them."""
    return {p for p, e in held_changes(project.ledger).items() if worktree_entry(project.repo, p) == e}


def _returns(feature: Feature, check: Check, seed: int | None) -> list[str]:
    """The files a job of `check` sends back: what the feature's gates read, an optimize search's metric file for
    its seed, and the check's `artifacts`."""
    searched = [seeded(feature.optimize.metric.file, seed)] if feature.optimize else []
    return [*metric_files(feature), *searched, *(seeded(a, seed) for a in check.artifacts or [])]


def start(project: Project, feature: Feature, *, attempt: int, log_dir: Path, reporter: Reporter | None,
          baseline: guards.Snapshot, shared: Sequence[str] | None, occasion: Occasion) -> bool:
    """Run the feature's local run checks, record its jobs, submit them; the feature is `running` after.

    When a local check fails, nothing is submitted (no cluster time for a tree that already fails):
    the verdict is recorded at once and False returned."""
    repo, ledger = project.repo, project.ledger
    cluster(project)  # no cluster configured: said before any check runs
    held = held_changes(ledger, but=feature.id)
    cand = candidate(repo, held=held)
    local = [c for c in feature.verify if c.run is not None and not c.on_ray]
    ran = check_candidate(project, local, log_dir, reporter, baseline=baseline, shared=shared, held=held) if local else None
    if ran and not all_passed(ran.evidence):
        _record_unsubmitted(project, feature, ran.evidence, occasion)
        return False
    base = head_sha(repo)
    changes = {p: e for p, e in changes_between(repo, f"{base}^{{tree}}" if base else None, cand.tree).items()
               if p not in HARNESS_FILES and p not in metric_files(feature)}  # the harness's, and regenerated
    jobs = [j for check in job_checks(feature) for j in job_records(project, feature, check, attempt)]
    pending = Pending(attempt=attempt, base_commit=base, tree=cand.tree,
                      changes={p: None if e is None else list(e) for p, e in changes.items()},
                      baseline=baseline.to_json(), local_evidence=ran.evidence if ran else [],
                      outputs=ran.outputs if ran else [], log_dir=str(log_dir), entry_kind=occasion.kind,
                      entry_fields=occasion.fields, entry_agent=occasion.agent)
    ledger.mark_running(feature.id, pending, jobs)
    submit_missing(project, feature.id)
    project.progress.append(LogEntry(kind="jobs-submitted", subject=feature.id, phase=feature.phase, fields={
        **occasion.fields, "status": "running", "cluster": cluster(project).address,
        "jobs": ", ".join(_describe(j) for j in jobs)}, checks=pending.local_evidence, commit=base))
    return True


def job_records(project: Project, feature: Feature, check: Check, attempt: int,
                labels: Mapping[str, str] | None = None) -> list[JobRecord]:
    """The jobs of a Ray `check` of `feature`'s attempt `attempt`, one per seed (executors.seed_runs, `labels` on
    top of the plan's), not yet submitted: each under a submission id ralph chose, with its own result nonce."""
    settings, res = cluster(project).settings, check.resources
    jobs = []
    for run in seed_runs(check, {**plan_labels(feature.phase, feature.id), **(labels or {})}):
        seed = run.seed
        nonce = secrets.token_hex(8)
        timeout_s = check.timeout_s or project.prd.defaults.check_timeout_s
        seed_part = "" if seed is None else f"s{seed}-"
        jobs.append(JobRecord(
            id=f"ralph-{feature.id}-a{attempt}-{slug(check.name)}-{seed_part}{nonce[:6]}", feature=feature.id,
            check=check.name, seed=seed, attempt=attempt, nonce=nonce,
            entrypoint=entrypoint(run.command, timeout_s=timeout_s, returns=_returns(feature, check, seed),
                                  nonce=nonce, allow=project.prd.defaults.env_allow, env=run.env,
                                  max_return_bytes=int(settings.max_return_mb * 2**20)),
            gpus=res.gpus if res else 0.0, cpus=res.cpus if res else 1.0, memory_gb=res.memory_gb if res else None,
            timeout_s=timeout_s, submitted_at=time.time()))
    return jobs


def _record_unsubmitted(project: Project, feature: Feature, local: list[Evidence], occasion: Occasion) -> None:
    failed = ", ".join(e.check for e in local if not e.passed)
    by_name = {e.check: e for e in local}
    for check in job_checks(feature):
        by_name[check.name] = Evidence(check=check.name, kind="run", verdict="fail", duration_s=0.0,
                                       detail=f"not submitted to Ray: the local check {failed} failed first",
                                       command=check.run, check_sha256=check.digest)
    gates = [c for c in feature.verify if c.run is None]
    by_name.update(zip([g.name for g in gates],
                       run_checks(gates, project.repo, default_timeout_s=project.prd.defaults.check_timeout_s)))
    record_verdict(project, feature, [by_name[c.name] for c in feature.verify], occasion)


def _describe(job: JobRecord) -> str:
    seed = f" seed {job.seed}" if job.seed is not None else ""
    gpus = f", {job.gpus:g} GPU" if job.gpus else ""
    return f"{job.id} ({job.check}{seed}{gpus})"


def submit_missing(project: Project, feature_id: str) -> int:
    """Submit the feature's jobs recorded but not yet known to be submitted; returns how many were new."""
    fs = project.ledger.feature(feature_id)
    todo = [j for j in fs.jobs if j.state == "SUBMITTING"]
    if not todo or fs.pending is None:
        return 0
    ray = cluster(project)
    submitted = 0
    with tempfile.TemporaryDirectory(prefix="ralph-job-") as tmp:
        root = job_tree(project.repo, fs.pending.tree, guards.Snapshot.from_json(fs.pending.baseline),
                        Path(tmp) / project.repo.name)
        for job in todo:
            known = ray.info(job.id) is not None
            if not known:
                ray.submit(job, root)
                submitted += 1
            job.state = "PENDING"
            project.ledger.save()
    return submitted


def poll(project: Project, feature_id: str) -> bool:
    """Refresh the feature's jobs from the cluster; True when every one has ended."""
    fs = project.ledger.feature(feature_id)
    done = refresh(cluster(project), fs.jobs)
    project.ledger.save()
    return done


def refresh(ray: RayCluster, jobs: Sequence[JobRecord]) -> bool:
    """Update `jobs` from the cluster (a job still running past its timeout is stopped); True when all have ended."""
    now = time.time()
    for job in jobs:
        if job.done:
            continue
        info = ray.info(job.id)
        if info is None:
            job.state, job.ended_at = "FAILED", now
            job.message = "the cluster no longer knows this job (was its head restarted?)"
            continue
        job.state, job.exit_code, job.message = info.state, info.exit_code, info.message  # type: ignore[assignment]
        job.started_at, job.ended_at = info.started_at or job.started_at, info.ended_at
        if job.state == "RUNNING" and job.elapsed_s(now) > job.timeout_s + STOP_GRACE_S:
            ray.stop(job.id)  # its own timer should have fired: a node that hangs, say
            job.message = f"stopped by ralph: past its timeout_s of {job.timeout_s:g}s"
    return all(j.done for j in jobs)


def _job_evidence(project: Project, feature: Feature, check: Check, jobs: list[JobRecord],
                  log_dir: Path, into: Path | None = None) -> tuple[Evidence, list[str]]:
    """The check's evidence from its jobs (all seeds), and the files they returned into `into` (default: the
    repository)."""
    ray = cluster(project)
    log_path = log_dir / f"{slug(check.name)}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, str, int | None, str]] = []  # (verdict, detail, exit code, tail)
    written: list[str] = []
    with open(log_path, "w", encoding="utf-8") as out:
        for job in sorted(jobs, key=lambda j: (j.seed is None, j.seed)):
            where = f" (seed {job.seed})" if job.seed is not None else ""
            try:
                log = ray.logs(job.id)
            except ClusterError as e:
                log = f"[ralph: {e}]\n"
            text = strip_results(log, job.nonce)
            out.write(f"$ ray job {job.id}{where}: {job.state}, exit {job.exit_code}\n{text}\n")
            tail = text[-TAIL_BYTES:]
            if job.state == "STOPPED":
                failures.append(("fail", f"Ray job {job.id}{where} was cancelled (stopped) {job.message}".strip(),
                                 job.exit_code, tail))
            elif timed_out(log, job.nonce):
                failures.append(("timeout", run_detail("timeout", where=where, timeout_s=job.timeout_s,
                                                       on=f" on Ray (job {job.id})"), job.exit_code, tail))
            elif job.state != "SUCCEEDED" or job.exit_code not in (0, None):
                detail = (run_detail("fail", where=where, exit_code=job.exit_code, on=f" on Ray (job {job.id})")
                          if job.exit_code is not None
                          else f"{job.message or job.state.lower()}{where} on Ray (job {job.id})")
                failures.append(("fail", detail, job.exit_code, tail))
            else:
                try:
                    data = result_block(log, job.nonce)
                except ResultProblem as p:
                    failures.append(("error", f"job {job.id}{where} returned no usable files: {p}", 0, tail))
                    continue
                if data:
                    written += apply_results(data, into or project.repo, _returns(feature, check, job.seed),
                                             project.protected)
    starts, ends = [j.started_at or j.submitted_at for j in jobs], [j.ended_at or time.time() for j in jobs]
    duration = max(ends) - min(starts)  # wall time from the first job's start to the last one's end
    ids = ", ".join(j.id for j in jobs)
    base = dict(check=check.name, kind="run", duration_s=round(duration, 3), command=check.run,
                log=str(log_path), check_sha256=check.digest)
    if failures:
        verdict, detail, code, tail = failures[0]
        more = f" (and {len(failures) - 1} more failing job(s))" if len(failures) > 1 else ""
        return Evidence(verdict=verdict, detail=detail + more, exit_code=code, output_tail=tail, **base), written
    detail = run_detail("pass", seeds=check.seeds, on=f" on Ray ({ids})")
    return Evidence(verdict="pass", detail=detail, exit_code=0, **base), written


def collect(project: Project, feature: Feature) -> FeatureVerdict:
    """Record the verdict of a feature whose jobs have all ended (see the module docstring)."""
    repo, ledger = project.repo, project.ledger
    fs = ledger.feature(feature.id)
    pending = fs.pending
    assert pending is not None, f"{feature.id} has no jobs to collect"
    log_dir = Path(pending.log_dir)
    by_name = {e.check: e for e in pending.local_evidence}
    outputs = list(pending.outputs)
    fresh = [p for p in metric_files(feature) if p not in outputs]
    with regenerated(repo, fresh, log_dir / "set-aside"):
        for check in job_checks(feature):
            ev, written = _job_evidence(project, feature, check, [j for j in fs.jobs if j.check == check.name],
                                        log_dir)
            by_name[check.name] = ev
            outputs += written
        gates = [c for c in feature.verify if c.run is None]
        for gate, ev in zip(gates, run_checks(gates, repo, default_timeout_s=project.prd.defaults.check_timeout_s)):
            by_name[gate.name] = ev
        figures = read_report(feature.report_figures(), repo)
    evidence = with_report([by_name[c.name] for c in feature.verify], figures)
    changes = {p: None if e is None else (e[0], e[1]) for p, e in pending.changes.items()}
    jobs = fs.jobs
    occasion = Occasion(pending.entry_kind, pending.entry_fields, pending.entry_agent)
    return record_verdict(
        project, feature, evidence, occasion, commit_of_evidence=pending.base_commit,
        commit=lambda: commit_held(repo, feature, pending.attempt, evidence, changes, outputs),
        fields={"jobs": ", ".join(f"{j.id} {j.state} {j.elapsed_s(time.time()):.1f}s" for j in jobs),
                "gpu-hours": f"{sum(j.gpu_hours for j in jobs):.4f}"},
        judged=Judged(pending.base_commit, pending.tree,
                      tuple(o for o in outputs if o.lower().endswith(PLOT_SUFFIXES))))


def run_to_end(project: Project, feature: Feature, check: Check, tree: str, *, into: Path,
               baseline: guards.Snapshot, attempt: int, log_dir: Path, labels: Mapping[str, str] | None = None,
               withheld: Sequence[str] = (), recorded: Callable[[list[JobRecord]], None] | None = None,
               ) -> tuple[Evidence, list[str], list[JobRecord]]:
    """A Ray `check` run on the candidate `tree` and waited for, here and now (an optimize search's measurement):
    one job per seed, submitted at once, the job tree built from the working tree at `into` (its object store) with
    the protected paths from `baseline` and without the `withheld` paths; the files the jobs return are written
    into `into`. Nothing goes in the ledger: an interrupted wait stops the jobs, and `recorded` is told them before
    they are submitted (so that the jobs of a ralph killed meanwhile can be stopped: `stop_jobs`). Returns the
    check's evidence, the files written and the jobs as they ended (their run times and GPU-hours)."""
    ray = cluster(project)
    jobs = job_records(project, feature, check, attempt, labels)
    if recorded is not None:
        recorded(jobs)
    try:
        with tempfile.TemporaryDirectory(prefix="ralph-job-") as tmp:
            root = job_tree(into, tree, baseline, Path(tmp) / project.repo.name)
            withhold(root, withheld)
            for job in jobs:
                ray.submit(job, root)
                job.state = "PENDING"
        while not refresh(ray, jobs):
            time.sleep(ray.settings.poll_s)
    except BaseException:  # interrupted, or the cluster failed: nothing is left running for nobody
        for job in jobs:
            if job.state != "SUBMITTING" and not job.done:
                ray.stop(job.id)
        raise
    evidence, written = _job_evidence(project, feature, check, jobs, log_dir, into=into)
    return evidence, written, jobs


def stop_jobs(project: Project, ids: Sequence[str]) -> list[str]:
    """Stop the jobs named `ids` that the cluster still runs (those it does not know were never submitted); returns
    the ids stopped."""
    ray, stopped = cluster(project), []
    for job_id in ids:
        info = ray.info(job_id)
        if info is not None and info.state not in TERMINAL and ray.stop(job_id):
            stopped.append(job_id)
    return stopped


def resume(project: Project) -> list[str]:
    """Submit whatever a killed ralph recorded but may not have submitted; returns the running features."""
    running = project.ledger.running()
    for fid in running:
        submit_missing(project, fid)
    return running


def wait(project: Project, view, *, features: Sequence[str] | None = None, deadline: float | None = None,
         first: bool = False) -> list:
    """Follow the running features' jobs (the view shows them), collecting each feature whose jobs have all
    ended. Returns the verdicts: as soon as one is in with `first`, else once none is left or at `deadline`
    (time.monotonic())."""
    poll_s = cluster(project).settings.poll_s
    verdicts, tails, tails_at = [], {}, 0.0
    while True:
        running = [f for f in project.ledger.running() if features is None or f in features]
        if not running or (first and verdicts):
            return verdicts
        for fid in running:
            if poll(project, fid):
                verdicts.append(collect(project, project.prd.feature(fid)))
        if hasattr(view, "show_jobs"):
            if time.monotonic() - tails_at >= TAILS_EVERY_S:  # a whole log per job: not on every poll
                tails, tails_at = _tails(project, running), time.monotonic()
            view.show_jobs([j for f in running for j in project.ledger.feature(f).jobs], tails)
        if (first and verdicts) or (deadline is not None and time.monotonic() >= deadline):
            return verdicts
        if project.ledger.running():
            time.sleep(poll_s)


def _tails(project: Project, running: list[str]) -> dict[str, str]:
    """The last log line of each running job (for the live view)."""
    ray, out = cluster(project), {}
    for fid in running:
        for job in project.ledger.feature(fid).jobs:
            if job.state == "RUNNING":
                try:
                    lines = [ln for ln in strip_results(ray.logs(job.id), job.nonce).splitlines() if ln.strip()]
                except ClusterError:
                    continue
                out[job.id] = lines[-1] if lines else ""
    return out
