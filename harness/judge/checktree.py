"""Checks run on what will be committed, not on the agent's live tree.

`run_in_check_tree` builds the candidate commit's tree (git.trees.candidate: the working tree minus
ignored, excluded and never-committed files), checks it out into a clean temporary directory,
puts the protected paths back as they were before the attempt (guards.put_back), and runs the
`run` checks there. A file the agent kept out of the commit (by .gitignore, .git/info/exclude, or
by making it too big) therefore cannot help the checks pass; a planted root `json.py` cannot
shadow the standard library either (the checks run with PYTHONSAFEPATH=1, see executors.seed_runs).

Ignored top-level directories that existed before the attempt (datasets, caches, run outputs, a
virtual environment) are linked into the checkout, so checks see them as they always did. What
the checks write comes back: every file they created or changed in the checkout (protected paths
excepted) is moved into the repository, then the metric gates read their files there.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.books.attempts import PLOT_SUFFIXES
from harness.books.git.repo import head_sha, ignored_dirs
from harness.books.git.trees import Candidate, TreeEntry, candidate, export_tree
from harness.books.layout import GIT_DIR, RALPH_DIR
from harness.books.records import Evidence
from harness.fileio import is_virtualenv
from harness.judge.checks import Reporter, confirm_comparison, confirmation_runs, read_report, run_checks, with_report
from harness.judge.executors.local import PYTHON_VAR
from harness.judge.freshness import regenerated
from harness.plan.patterns import matching_pattern
from harness.plan.prd import Check, ReportFigure
from harness.project import Project
from harness.sandbox import guards
from harness.sandbox.environment import Environment
from harness.settings import CheckPython, check_python, load_settings

# Runs one Ray check of the candidate tree (its sha) to its end: (its evidence, the files its jobs returned)
RayRunner = Callable[[Check, str], tuple[Evidence, list[str]]]
NEVER_COPIED = (f"{GIT_DIR}/**", f"{RALPH_DIR}/**")
WALK_LIMIT = 20_000  # entries of the shared directories looked at for the images the checks wrote


@dataclass
class CheckRun:
    """What the checks said, about which candidate tree, and which files they wrote."""

    evidence: list[Evidence]
    candidate: Candidate
    outputs: list[str]
    plots: list[str] = field(default_factory=list)  # the images among what they wrote (`written_images`)


def _signatures(root: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, size, mtime) of every file under `root`, not following links (the shared directories
    are links): any write changes one of them, and nothing is read (a tree may hold large files)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]
        for name in filenames:
            st = (base / name).lstat()
            out[(base / name).relative_to(root).as_posix()] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def written_images(repo: Path, outputs: Sequence[str], shared: Sequence[str], since_ns: int) -> list[str]:
    """The images the checks wrote (repository-relative): those among `outputs`, and those in the shared
    directories (written there in place, so found by their time: modified at or after `since_ns`). Virtual
    environments are not searched, and the walk stops after WALK_LIMIT entries (a dataset directory)."""
    found = [p for p in outputs if p.lower().endswith(PLOT_SUFFIXES)]
    seen = 0
    for d in shared:
        if is_virtualenv(repo / d) or (repo / d).is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(repo / d):
            seen += len(dirnames) + len(filenames)
            if seen > WALK_LIMIT:
                return found
            base = Path(dirpath)
            for name in filenames:
                path = base / name
                if name.lower().endswith(PLOT_SUFFIXES) and path.lstat().st_mtime_ns >= since_ns:
                    found.append(path.relative_to(repo).as_posix())
    return list(dict.fromkeys(found))


def _mounts(repo: Path, root: Path, shared: Sequence[str], protected: Sequence[str],
            outputs: Collection[str]) -> tuple[list[Path], list[Path]]:
    """(read-only, writable) paths for a sandboxed check: the judge's files in the checkout read-only; of the
    shared directories, the plan's outputs (PRD.output_dirs) writable, the inputs (datasets, caches, virtual
    environments) read-only."""
    readonly = guards.readonly_paths(root, protected)
    writable = []
    for d in shared:
        (writable if d in outputs and not is_virtualenv(repo / d) else readonly).append(repo / d)
    return readonly, writable


def _move_back(root: Path, repo: Path, before: dict[str, tuple[int, int, int]], protected: Sequence[str]) -> list[str]:
    """Move the files the checks created or changed under `root` into `repo`; returns their paths."""
    moved = []
    for rel, signature in sorted(_signatures(root).items()):
        if before.get(rel) == signature or matching_pattern(rel, (*protected, *NEVER_COPIED)):
            continue
        src, dst = root / rel, repo / rel
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dst)
        moved.append(rel)
    return moved


def withhold(root: Path, withheld: Sequence[str]) -> None:
    """Remove the `withheld` paths (an optimize search's holdout: files or folders) from the checkout at `root`."""
    for rel in withheld:
        gone = root / rel
        if gone.is_dir() and not gone.is_symlink():
            shutil.rmtree(gone)
        else:
            gone.unlink(missing_ok=True)


def run_in_check_tree(
    repo: Path,
    checks: Sequence[Check],
    *,
    environment: Environment,
    baseline: guards.Snapshot,
    shared: Sequence[str],
    protected: Sequence[str],
    env_allow: Sequence[str],
    default_timeout_s: float,
    log_dir: Path,
    reporter: Reporter | None,
    set_aside: Sequence[str] = (),
    held: Mapping[str, TreeEntry] | None = None,
    labels: Mapping[str, str] | None = None,
    python: CheckPython | None = None,
    report: Sequence[ReportFigure] = (),
    outputs: Collection[str] = (),
    network: bool = False,
    withheld: Sequence[str] = (),
    ray: RayRunner | None = None,
) -> CheckRun:
    """Run `checks` on a clean checkout of the candidate tree; see the module docstring.

    `set_aside` (metric files) are moved away first, in the checkout and in the repository, so
    only this verification's own runs can write them (freshness.py). `labels` go into the commands'
    environment (checks.run_check), with RALPH_HEAD (the commit the candidate starts from) and
    RALPH_TREE (the candidate tree's sha). `held`: the changes of features whose jobs still run, left at
    HEAD's version in the candidate (git.trees.candidate). `python`: the project's interpreter, first on
    the commands' PATH (RALPH_PYTHON; default: ralph's own). A comparison with `confirm_seeds` that passed has
    the seeded run checks run again for those seeds, then is tested on them alone (checks.confirm_comparison).
    `report` (a feature's report figures) is read with the gates, and rides on the last evidence. `outputs`: the
    shared directories a sandboxed check may write (the others are read-only to it). `network`: whether a
    sandboxed check reaches the network (`defaults.check_network`; without a sandbox it always does).
    `withheld` (an optimize search's holdout paths) are removed from the checkout, and under bwrap hidden in the
    repository too, so the checks' code cannot read them. `ray`: runs each Ray check (`"executor": "ray"`) to its
    end after the local ones, its returned files written into `repo` (jobs.run_to_end); without it every run check
    runs here.
    """
    cand = candidate(repo, held=held)
    commit = head_sha(repo)
    with tempfile.TemporaryDirectory(prefix="ralph-check-") as tmp:
        root = Path(tmp) / repo.name
        root.mkdir()
        export_tree(repo, cand.tree, root, skip=guards.put_back_paths(baseline))
        guards.put_back(root, baseline)
        withhold(root, withheld)
        for d in shared:
            if not (root / d).exists():
                (root / d).symlink_to(repo / d, target_is_directory=True)
        # sandboxed: the judge's files read-only, run outputs writable; without a sandbox the checks still get a
        # temporary directory of their own (environment.private_tmp), with the repository bound back
        readonly, writable = _mounts(repo, root, shared, protected, outputs) if environment.sandboxed else ([], [repo])
        readonly += [python.executable.parent.parent] if python else []  # the project's Python, wherever it lives
        launch = functools.partial(environment.run, network=network, readonly=readonly, writable=writable, own_tmp=True,
                                   hidden=[repo / rel for rel in withheld])
        stash = log_dir / "set-aside"
        commands = [c for c in checks if c.run is not None and not (ray and c.on_ray)]
        remote = [c for c in checks if c.run is not None and ray and c.on_ray]
        gates = [c for c in checks if c.run is None]
        # the checkout has no .git: RALPH_HEAD and RALPH_TREE tell its commands which code they run (lab.rundir.provenance)
        code = {"RALPH_HEAD": commit or "", "RALPH_TREE": cand.tree,
                **({PYTHON_VAR: str(python.executable)} if python else {})}
        common = dict(env_allow=env_allow, default_timeout_s=default_timeout_s, log_dir=log_dir, commit=commit,
                      reporter=reporter, launch=launch, labels={**(labels or {}), **code})
        started = time.time_ns()
        with regenerated(repo, list(set_aside), stash / "repo"), regenerated(root, list(set_aside), stash / "tree"):
            before = _signatures(root)
            ran = run_checks(commands, root, **common)
            outputs = _move_back(root, repo, before, protected)
            far = []
            for check in remote:
                assert ray is not None
                evidence, written = ray(check, cand.tree)
                far.append(evidence)
                outputs += written
            read = run_checks(gates, repo, **common)  # their files came back from the checkout with the outputs
            for i, gate in enumerate(gates):
                if gate.compare is not None and gate.compare.confirm_seeds and read[i].passed:
                    before = _signatures(root)
                    again = run_checks(confirmation_runs(commands, gate.compare.confirm_seeds), root, **common)
                    outputs += _move_back(root, repo, before, protected)
                    read[i] = confirm_comparison(gate, read[i], repo, again)
            figures = read_report(report, repo)
    by_check = {id(c): e for c, e in [*zip(commands, ran), *zip(remote, far), *zip(gates, read)]}
    return CheckRun(with_report([by_check[id(c)] for c in checks], figures), cand, outputs,
                    written_images(repo, outputs, shared, started))


def check_candidate(project: Project, checks: Sequence[Check], log_dir: Path, reporter: Reporter | None, *,
                    baseline: guards.Snapshot | None = None, shared: Sequence[str] | None = None,
                    set_aside: Sequence[str] = (), labels: Mapping[str, str] | None = None,
                    held: Mapping[str, TreeEntry] | None = None, report: Sequence[ReportFigure] = (),
                    withheld: Sequence[str] = ()) -> CheckRun:
    """A feature's checks: `run_in_check_tree` with the project's plan, protected set and environment.

    `baseline` is what the protected paths must be there (default: as they are now); `shared` the
    ignored top-level directories linked in (default: those that exist now); `labels` the RALPH_*
    variables the commands see (checks.plan_labels); `held` other running features' changes, left out;
    `report` the feature's report figures, read with its gates; `withheld` paths kept from the checks. The commands run with the project's Python
    first on PATH (settings.check_python).
    """
    d = project.prd.defaults
    return run_in_check_tree(
        project.repo, checks, environment=project.environment, baseline=baseline or project.snapshot(),
        shared=ignored_dirs(project.repo) if shared is None else shared, protected=project.protected,
        env_allow=d.env_allow, default_timeout_s=d.check_timeout_s, log_dir=log_dir, reporter=reporter,
        set_aside=set_aside, labels=labels, held=held, report=report, withheld=withheld,
        python=check_python(project.repo, load_settings(project.repo).python), outputs=project.prd.output_dirs(), network=d.check_network)


def check_phase(project: Project, checks: Sequence[Check], log_dir: Path, reporter: Reporter | None,
                labels: Mapping[str, str] | None = None) -> list[Evidence]:
    """A phase's entry or exit checks: `check_candidate` on the tree as it is, with today's protected
    files; the evidence only (nothing of theirs is committed)."""
    return check_candidate(project, checks, log_dir, reporter, labels=labels).evidence
