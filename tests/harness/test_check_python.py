"""Checks run on the project's Python: the activated venv, else the repository's .venv, else
`[tool.ralph] python`, else ralph's own interpreter (issue 24: pipx / uv-tool installs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.judge.executors.local import check_env
from harness.judge.verify import verify_feature
from harness.project import Project
from harness.settings import SettingsError, check_python, load_settings
from tests.harness.conftest import commit_plan, git

MARKER = "ralph_marker_pkg"  # importable only from the project's venv
PLAN = {
    "version": 1, "project": "py", "defaults": {"max_attempts": 2, "attempt_timeout_s": 60, "check_timeout_s": 60},
    "phases": [{"id": 1, "name": "One"}],
    "features": [{"id": "F", "phase": 1, "title": "imports", "verify": [
        {"name": "project package", "run": f"python -c 'import {MARKER}'"},
        {"name": "safe path kept", "run": "python -c 'import os, sys; assert sys.flags.safe_path; "
                                          "assert os.environ[\"PYTHONSAFEPATH\"] == \"1\"'"},
        {"name": "venv named", "run": 'test -n "$VIRTUAL_ENV" && test "$(command -v python)" = "$VIRTUAL_ENV/bin/python"'},
    ]}],
}


def make_venv(path: Path) -> Path:
    """A virtual environment (no pip) whose site-packages holds MARKER."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = subprocess.run([str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / f"{MARKER}.py").write_text("")
    return path


@pytest.fixture
def project_repo(repo: Path) -> Path:
    return commit_plan(repo, PLAN, ".ralph/\n.venv/\n")


def verdict(repo: Path) -> dict[str, str]:
    project = Project.open(repo)
    return {e.check: e.verdict for e in verify_feature(project, project.prd.feature("F")).evidence}


def test_activated_venv_is_used_by_checks(project_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = make_venv(tmp_path / "env")
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    assert verdict(project_repo) == dict.fromkeys(["project package", "safe path kept", "venv named"], "pass")


def test_repository_venv_is_used_without_activation(project_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    make_venv(project_repo / ".venv")
    assert verdict(project_repo) == dict.fromkeys(["project package", "safe path kept", "venv named"], "pass")


def test_validate_run_from_the_repository_asks_the_repositorys_venv(project_repo: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`ralph validate` run in the repository (`-C .`, the default) asked a relative `.venv/bin/python` from a
    neutral folder whether the checks can import the project's package: the probe failed, so validate warned that
    an installed package could not be imported (this repository's S3-CRATE `params.py` and `lab`)."""
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    make_venv(project_repo / ".venv")
    (project_repo / f"{MARKER}.py").write_text("")  # the package is the repository's own, and installed in .venv
    monkeypatch.chdir(project_repo)
    assert check_python(Path("."), None).executable.is_absolute()
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 0 and "cannot import" not in result.output, result.output


def test_order_and_sources(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    own = check_python(repo, None, environ={})
    assert own.executable == Path(sys.executable) and "ralph's own" in own.source
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert check_python(repo, str(fake), environ={}).source == "[tool.ralph] python"
    local = make_venv(repo / ".venv")
    assert check_python(repo, str(fake), environ={}).executable == local / "bin" / "python"
    active = make_venv(tmp_path / "active")
    chosen = check_python(repo, str(fake), environ={"VIRTUAL_ENV": str(active)})
    assert chosen.executable == active / "bin" / "python" and "VIRTUAL_ENV" in chosen.describe()
    # a VIRTUAL_ENV that is not one (deleted since) is passed over, not trusted
    assert check_python(repo, None, environ={"VIRTUAL_ENV": str(tmp_path / "gone")}).executable == local / "bin" / "python"


def test_configured_python_from_pyproject(project_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    venv = make_venv(tmp_path / "conda-like")
    (project_repo / "pyproject.toml").write_text(f'[tool.ralph]\npython = "{venv}/bin/python"\n')
    git(project_repo, "add", "-A")
    git(project_repo, "commit", "-qm", "python")
    assert load_settings(project_repo).python == f"{venv}/bin/python"
    assert verdict(project_repo)["project package"] == "pass"


def test_configured_python_that_is_missing_says_so(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not an executable file.*activate"):
        check_python(tmp_path, "envs/none/bin/python", environ={})


def test_check_env_default_is_ralphs_interpreter() -> None:
    assert check_env([])["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_dry_run_and_status_say_which_python(project_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    make_venv(project_repo / ".venv")
    expected = f"checks use Python: {project_repo / '.venv' / 'bin' / 'python'} (the repository's .venv)"
    dry = CliRunner().invoke(app, ["run", "--phase", "1", "--dry-run", "-C", str(project_repo)])
    assert dry.exit_code == 0, dry.output
    assert expected in dry.output
    status = CliRunner().invoke(app, ["status", "-C", str(project_repo)], env={"COLUMNS": "250"})
    assert status.exit_code == 0, status.output
    assert expected in status.output.replace("\n", "")
    data = json.loads(CliRunner().invoke(app, ["status", "--json", "-C", str(project_repo)]).output)
    assert data["python"].endswith("(the repository's .venv)")
