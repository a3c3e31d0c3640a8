"""The checks' surroundings are ralph's: a check runs in a mount namespace whose temporary directory holds
only what ralph put there, even when the agent ran with `--sandbox none`.

The attack: a test runner looks for its configuration in the ancestors of the checkout it runs in (pytest
takes the first `pytest.ini`, `pyproject.toml`, `tox.ini` or `setup.cfg` it finds walking up), and the
checkout lives in the world-writable temporary directory. An unsandboxed agent leaves one there with
`addopts = --collect-only`: pytest collects the failing test, runs nothing and exits 0.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from harness.books.ledger import Ledger
from harness.sandbox.environment import bwrap_available
from tests.harness.conftest import git
from tests.harness.test_judge_fails_closed import PLAN, run_agent

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="the checks' namespace needs bubblewrap")


@pytest.fixture
def tested(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose gate is a protected failing test; ralph's temporary directory is `tmp_path/t`."""
    plan = {**PLAN, "defaults": {**PLAN["defaults"], "protected": ["test_score.py"]}, "features": [
        {"id": "F-1", "phase": 1, "title": "score", "verify": [{"name": "tests", "run": "python -m pytest -q -p no:cacheprovider test_score.py"}]}]}
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    (repo / ".gitignore").write_text(".ralph/\n")
    (repo / "test_score.py").write_text("def test_score():\n    assert False, 'not done'\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "setup")
    (tmp_path / "t").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t"))
    return repo


@pytest.mark.parametrize("name, text", [
    ("pytest.ini", "[pytest]\naddopts = --collect-only\n"),
    ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = '--collect-only'\n"),
])
def test_a_runner_config_planted_above_the_checkout_is_not_seen(tested: Path, tmp_path: Path, name: str,
                                                                text: str) -> None:
    planted = tmp_path / "t" / name
    result = run_agent(tested, tmp_path, f"cat > {planted} <<'EOF'\n{text}EOF\necho work > notes.txt\n",
                       "--sandbox", "none")
    assert planted.exists(), result.output  # the agent could write it; the checks did not see it
    fs = Ledger(tested).feature("F-1")
    assert fs.status != "passing", result.output
    assert any(e.kind == "run" and not e.passed for e in fs.last_evidence), fs.last_evidence
