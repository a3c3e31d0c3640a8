"""Parallel candidates: each in its own git worktree from the incumbent, each agent in its own process.

A worktree lives in a temporary directory outside the repository (`git worktree add --detach`, ralph's git
with hooks off), so a candidate's agent writes only there: under bwrap its writable mount is that worktree
alone, and the guards compare each worktree's protected paths on their own. The agents run at once, and then
the candidates' checks, each in a process of its own (`in_processes`: `concurrent.futures` with the spawn start
method): `proc.Reaper`, which kills what a command left behind, works per process, so one agent's or check's end
cannot kill another's commands.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

from harness.agents.base import Agent, Budget, Result, Task
from harness.books.git.repo import open_repo
from harness.books.layout import HARNESS_FILES
from harness.fileio import clip
from harness.sandbox.proc import Reaper


@contextmanager
def worktrees(repo: Path, sha: str, count: int) -> Iterator[list[Path]]:
    """`count` detached worktrees of `repo` at `sha`, removed (and pruned) afterwards."""
    git = open_repo(repo).git
    roots, made = [], []
    try:
        for _ in range(count):
            root = Path(tempfile.mkdtemp(prefix="ralph-candidate-"))
            roots.append(root)
            path = root / repo.name
            git.worktree("add", "--detach", "--quiet", str(path), sha)
            made.append(path)
        yield made
    finally:
        for path in made:
            git.worktree("remove", "--force", str(path))
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
        git.worktree("prune")


def checkout_tree(repo: Path, treeish: str) -> None:
    """Make the working tree (and index) of `repo` the tree of `treeish`, keeping ralph's records (PRD.json,
    progress.txt) as they are now; untracked and ignored files are left alone."""
    records = {rel: (repo / rel).read_bytes() for rel in HARNESS_FILES if (repo / rel).is_file()}
    open_repo(repo).git.read_tree("-u", "--reset", treeish)
    for rel, data in records.items():
        (repo / rel).write_bytes(data)


def _run_one(agent: Agent, task: Task, budget: Budget) -> Result:
    """In a worker process: one agent turn; whatever it started is killed when it returns."""
    try:
        with Reaper():
            return agent.run(task, budget)
    except Exception as e:
        return Result("error", error=clip(f"the agent backend raised {type(e).__name__}: {e}", 500))


T = TypeVar("T")


def in_processes(fn: Callable[..., T], calls: Sequence[Mapping[str, Any]]) -> list[T | Exception]:
    """`fn(**kwargs)` for each of `calls`, all at once, each in a process of its own (spawned, so `fn` and its
    arguments must pickle); in the order of `calls`. A call that raises, or whose arguments cannot be sent, or
    whose worker dies, gives its exception in its place."""
    with ProcessPoolExecutor(max_workers=len(calls), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, **kwargs) for kwargs in calls]
        results: list[T | Exception] = []
        for f in futures:
            try:
                results.append(f.result())
            except Exception as e:
                results.append(e)
        return results


def run_agents(agent: Agent, tasks: Sequence[Task], budget: Budget) -> list[Result]:
    """Each task's agent turn at once, each in its own process (`on_event` is not carried across: the live view
    shows the round, not each action). A worker that fails is an error result, never an exception."""
    done = in_processes(_run_one, [dict(agent=agent, task=replace(t, on_event=None), budget=budget) for t in tasks])
    return [r if isinstance(r, Result) else  # the backend could not be sent to a worker, or the worker died
            Result("error", error=clip(f"the agent's worker failed ({type(r).__name__}: {r})", 500)) for r in done]


def fold(path: Path, base: str) -> None:
    """Commits an agent made in its worktree: HEAD goes back to `base`, their changes stay in the working tree."""
    git = open_repo(path).git
    if git.rev_parse("HEAD") != base:
        git.reset("--soft", base)
