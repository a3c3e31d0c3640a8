"""What a sandboxed command cannot touch.

The toolchain the judge runs on is not the agent's: under bwrap every interpreter and virtual environment
that ralph or the checks run is read-only, wherever it lives, inside the repository included (the issue's
reproduction: ralph installed in the repository's `.venv`, the `make setup` layout; the agent planted a
`.pth` file that made `json.dumps` report 0.99 in checks). And ralph's records in `.ralph/` are hidden."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.sandbox.environment import Environment, bwrap_available
from tests.harness.test_judge_fails_closed import project  # noqa: F401  (the fixture)

needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap cannot create namespaces here")


def fake_venv(root: Path) -> Path:
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return site


def agent_run(repo: Path, command: str) -> int:
    return Environment("bwrap").run(command, repo, timeout_s=30, env={"PATH": os.environ["PATH"]}).returncode


@needs_bwrap
def test_ralphs_own_environment_inside_the_repository_is_read_only(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    site = fake_venv(repo / ".venv")
    monkeypatch.setattr(sys, "prefix", str(repo / ".venv"))  # ralph runs from the repository's .venv
    assert agent_run(repo, f"echo 'import evil' > {site}/zz-evil.pth") != 0
    assert not (site / "zz-evil.pth").exists()
    assert agent_run(repo, "echo work > work.txt") == 0 and (repo / "work.txt").exists()  # the rest stays writable


@needs_bwrap
def test_the_projects_virtual_environment_is_read_only(tmp_path: Path) -> None:
    """A venv the checks use (any top-level directory with pyvenv.cfg, however named) is not the agent's."""
    repo = tmp_path / "repo"
    site = fake_venv(repo / "env-py311")
    assert agent_run(repo, f"touch {site}/sitecustomize.py") != 0
    assert agent_run(repo, f"echo x > {repo}/env-py311/pyvenv.cfg") != 0
    assert not (site / "sitecustomize.py").exists()


def test_ralph_warns_when_its_environment_is_in_the_repository_and_unsandboxed(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.run.session import toolchain_warning
    from harness.settings import RunSettings

    repo = tmp_path / "repo"
    fake_venv(repo / ".venv")
    monkeypatch.setattr(sys, "prefix", str(repo / ".venv"))
    assert "inside the repository" in (toolchain_warning(RunSettings(sandbox="none"), repo) or "")
    assert toolchain_warning(RunSettings(sandbox="bwrap"), repo) is None
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "elsewhere"))
    assert toolchain_warning(RunSettings(sandbox="none"), repo) is None


@needs_bwrap
def test_ralphs_records_are_hidden_from_a_sandboxed_command(tmp_path: Path) -> None:
    """.ralph/ holds the attempt in flight, job ids and result nonces: under bwrap it is an empty, read-only
    directory, not merely read-only."""
    repo = tmp_path / "repo"
    (repo / ".ralph").mkdir(parents=True)
    (repo / ".ralph" / "attempt.json").write_text('{"attempt": 1}')
    assert agent_run(repo, "test -e .ralph/attempt.json") != 0
    assert agent_run(repo, "touch .ralph/x") != 0
    assert agent_run(repo, "test -d .ralph && echo work > work.txt") == 0


# ------------------------------------------------------------------ without a sandbox: detected, the run stops

def project_with_venv(repo: Path) -> Path:
    """The fails-closed project, with its own `.venv` (git-ignored) that the checks run: its site-packages."""
    import subprocess

    from tests.harness.conftest import git
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(repo / ".venv")], check=True)
    (repo / ".gitignore").write_text(".ralph/\nresults.json\n.venv/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "ignore the venv")
    return next((repo / ".venv" / "lib").glob("python3*")) / "site-packages"


FAKE_SCORE = "import json; _d = json.dump; json.dump = lambda o, f, *a, **k: _d({**o, 'score': 0.99}, f, *a, **k)"


@pytest.mark.parametrize("planted", [
    ("zz-evil.pth", "import os; os.environ.get('RALPH_FEATURE') and exec(" + repr(FAKE_SCORE) + ")\n"),  # the issue's
    ("sitecustomize.py", FAKE_SCORE + "\n"),  # another file every interpreter start runs
])
def test_an_unsandboxed_agent_that_changes_the_checks_python_is_caught_and_the_run_stops(
        project: Path, tmp_path: Path, planted: tuple[str, str]) -> None:
    from harness.books.ledger import Ledger
    from harness.errors import ExitCode
    from tests.harness.test_judge_fails_closed import run_agent

    site = project_with_venv(project)
    name, text = planted
    result = run_agent(project, tmp_path, f"cat > {site / name} <<'PY'\n{text}PY\n", "--sandbox", "none")
    fs = Ledger(project).feature("F-1")
    assert fs.status != "passing" and fs.attempts == 1, result.output  # counted, not refunded
    assert any(e.kind == "guard" and name in e.detail for e in fs.last_evidence), fs.last_evidence
    assert "Reinstall" in result.output and result.exit_code not in (ExitCode.OK, ExitCode.AWAITING_APPROVAL)
    assert name in (project / "progress.txt").read_text()
