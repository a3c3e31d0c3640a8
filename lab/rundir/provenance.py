"""Provenance: which code made a result, with which seed, libraries and number of processes.

`code_version` works inside `ralph verify`'s clean checkout too: it runs its checks on an exported
copy of the tree it would commit, which has no `.git`, and tells the commands the HEAD it started
from and the exact tree it checked (RALPH_HEAD, RALPH_TREE; the tree holds the uncommitted changes
too). `run_provenance` is what every seq-JEPA results file records (results.json of `lab eval`,
stream.json of `lab stream`), under flat `provenance.<key>` keys (`flat`); the LLM track nests the
same facts under one `provenance` object (lab.llm.results). `world_size` is how many data-parallel
processes trained the run (1 without `--nproc`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from lab.config import RunConfig


def code_version() -> dict[str, str | None]:
    """{"git_sha": HEAD of the repository around the working directory ("-dirty" when tracked files
    have edits) or RALPH_HEAD outside one (None when neither), "git_tree": RALPH_TREE or None}."""
    import git

    tree = os.environ.get("RALPH_TREE") or None
    try:
        repo = git.Repo(search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return {"git_sha": os.environ.get("RALPH_HEAD") or None, "git_tree": tree}
    if not repo.head.is_valid():  # a repository without commits yet
        return {"git_sha": None, "git_tree": tree}
    return {"git_sha": repo.head.commit.hexsha + ("-dirty" if repo.is_dirty(untracked_files=False) else ""),
            "git_tree": tree}


def run_provenance(cfg: RunConfig, train_seconds: float, world_size: int) -> dict[str, Any]:
    """The provenance of a seq-JEPA run: its name, git commit and tree, seed, config digest, torch
    version, training wall time (s) and world size."""
    return {"run": cfg.name, **code_version(), "seed": cfg.train.seed, "config_hash": cfg.digest(),
            "torch": torch.__version__, "train_wall_s": round(train_seconds, 2), "world_size": world_size}


def flat(provenance: dict[str, Any]) -> dict[str, Any]:
    """{"provenance.<key>": value}: the flat keys of results.json and stream.json."""
    return {f"provenance.{k}": v for k, v in provenance.items()}
