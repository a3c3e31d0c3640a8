"""Shared fixtures: a minimal valid PRD and real git repositories in tmp dirs."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

BASE_PRD: dict[str, Any] = {
    "version": 1,
    "project": "demo",
    "defaults": {"max_attempts": 2, "attempt_timeout_s": 60, "check_timeout_s": 30},
    "phases": [
        {"id": 1, "name": "Baseline", "goal": "works", "exit": [{"name": "exit ok", "run": "true"}], "approval": True},
        {"id": 2, "name": "Next", "goal": "later"},
    ],
    "features": [
        {
            "id": "FEAT-1",
            "phase": 1,
            "title": "write a result",
            "verify": [
                {"name": "make result", "run": "echo '{\"eval.acc\": 0.5}' > result.json"},
                {"name": "acc gate", "metric": {"file": "result.json", "key": "eval.acc", "op": ">=", "value": 0.4}},
            ],
        },
        {
            "id": "FEAT-2",
            "phase": 1,
            "title": "depends on one",
            "depends_on": ["FEAT-1"],
            "verify": [{"name": "ok", "run": "true"}],
        },
    ],
}


@pytest.fixture
def prd_dict() -> dict[str, Any]:
    return copy.deepcopy(BASE_PRD)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit_plan(repo: Path, plan: dict[str, Any], gitignore: str = ".ralph/\n") -> Path:
    """`repo` with `plan` as PRD.json and `gitignore` as .gitignore, committed; returns `repo`."""
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    (repo / ".gitignore").write_text(gitignore)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    return repo


def validate_both_ways(tmp_path: Path, plan: dict[str, Any]) -> tuple[Any, Any]:
    """`ralph validate` of `plan` (written to tmp_path/PRD.json), lenient then `--strict`: both CLI results."""
    from typer.testing import CliRunner

    from harness.cli import app

    path = tmp_path / "PRD.json"
    path.write_text(json.dumps(plan))
    return tuple(CliRunner().invoke(app, ["validate", str(path), *flags, "-C", str(tmp_path)])
                 for flags in ([], ["--strict"]))


def init_repo(path: Path) -> Path:
    """`path` made an empty git repository (no commits yet, branch main) with a committer identity."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository (no commits yet) with a committer identity."""
    return init_repo(tmp_path / "repo")


@pytest.fixture
def prd_repo(repo: Path, prd_dict: dict[str, Any]) -> Path:
    """`repo` with PRD.json written (not committed)."""
    (repo / "PRD.json").write_text(json.dumps(prd_dict, indent=2))
    return repo
