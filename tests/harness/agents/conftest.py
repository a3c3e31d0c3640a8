"""A small repository for agent tests: PRD.json, progress.txt, a git directory, a source file."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.agents.base import Task

PRD = {"version": 1, "project": "demo", "features": [{"id": "FEAT-1", "phase": 1, "passes": False}]}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "PRD.json").write_text(json.dumps(PRD, indent=2))
    (root / "progress.txt").write_text("## start\n")
    (root / "src").mkdir()
    (root / "src" / "model.py").write_text("def f():\n    return 1\n")
    return root


@pytest.fixture
def make_task(repo: Path) -> Callable[..., Task]:
    def make(feature_id: str = "FEAT-1", attempt: int = 1, **fields: object) -> Task:
        defaults: dict[str, object] = {
            "system": "Principles: verify, do not guess.",
            "prompt": "Implement FEAT-1.",
            "workdir": repo,
            "transcript_path": repo / ".ralph" / "runs" / "r1" / f"{feature_id}-{attempt}.jsonl",
        }
        return Task(feature_id, attempt, **{**defaults, **fields})  # type: ignore[arg-type]

    return make


@pytest.fixture
def no_anthropic_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ANTHROPIC_* variables from the outer environment leak into a test."""
    for name in list(os.environ):
        if name.startswith("ANTHROPIC_"):
            monkeypatch.delenv(name)
    return monkeypatch
