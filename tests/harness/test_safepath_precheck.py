"""Issue 24: the PYTHONSAFEPATH trap is found by `ralph validate` and `ralph run --dry-run`, before an attempt
is spent, and the fix they name works when the judge runs the check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.judge.safepath import needs
from tests.harness.conftest import commit_plan


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def package_repo(repo: Path, prd_dict: dict[str, Any]) -> Path:
    """A repository with its own package (`mypkg/`), tests that import it, and a script with a neighbour."""
    (repo / "mypkg").mkdir()
    (repo / "mypkg" / "__init__.py").write_text("VALUE = 3\n")
    (repo / "mypkg" / "train.py").write_text("print('trained')\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_value.py").write_text("from mypkg import VALUE\n\ndef test_value():\n    assert VALUE == 3\n")
    (repo / "scripts").mkdir()
    (repo / "scripts" / "data.py").write_text("ROWS = 2\n")
    (repo / "scripts" / "run.py").write_text("import json\nfrom data import ROWS\nprint(json.dumps(ROWS))\n")
    prd_dict["features"][0]["verify"] = [{"name": "tests", "run": "python -m pytest -q tests"}]
    return commit_plan(repo, prd_dict)


def set_check(repo: Path, run: str) -> None:
    plan = json.loads((repo / "PRD.json").read_text())
    plan["features"][0]["verify"] = [{"name": "tests", "run": run}]
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))


def test_validate_and_the_dry_run_warn_before_any_attempt(package_repo: Path) -> None:
    out = flat(ralph("validate", "-C", package_repo).output)
    assert ("FEAT-1 · check 'tests': `python -m pytest -q tests` cannot import 'mypkg' (mypkg/): checks run with "
            "PYTHONSAFEPATH=1") in out
    assert "pip install -e ." in out and "PYTHONPATH=." in out
    dry = flat(ralph("run", "--dry-run", "-C", package_repo).output)
    assert "warning: FEAT-1 · check 'tests': `python -m pytest -q tests` cannot import 'mypkg'" in dry


def test_the_warning_is_right_the_judge_fails_without_the_fix_and_passes_with_it(package_repo: Path) -> None:
    """What validate predicts is what `ralph verify` then finds; PYTHONPATH=. silences it and makes the check pass."""
    assert ralph("verify", "FEAT-1", "-C", package_repo).exit_code == 1
    set_check(package_repo, "PYTHONPATH=. python -m pytest -q tests")
    assert "PYTHONSAFEPATH" not in ralph("validate", "-C", package_repo).output
    commit_plan(package_repo, json.loads((package_repo / "PRD.json").read_text()))
    assert ralph("verify", "FEAT-1", "-C", package_repo).exit_code == 0


@pytest.mark.parametrize(("run", "names"), [
    ("python -m pytest -q tests", {"mypkg"}),
    ("pytest tests/test_value.py", {"mypkg"}),
    ("timeout 60 python -u -m mypkg.train", {"mypkg"}),
    ("python scripts/run.py", {"data"}),  # its neighbour; json is the standard library's
    ("bash -c 'cd . && python -c \"import mypkg\"'", {"mypkg"}),
    ("env PYTHONPATH=. python -m mypkg.train", set()),
    ("python -m pytest -q tests/missing", set()),
    ("python -c 'import json'", set()),
])
def test_what_each_kind_of_command_needs(package_repo: Path, run: str, names: set[str]) -> None:
    assert {n.name for n in needs(package_repo.resolve(), run)} == names


def test_pytest_that_puts_the_top_on_the_path_itself_is_not_flagged(package_repo: Path) -> None:
    (package_repo / "conftest.py").write_text("")
    assert list(needs(package_repo.resolve(), "python -m pytest -q tests")) == []
    (package_repo / "conftest.py").unlink()
    (package_repo / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    assert list(needs(package_repo.resolve(), "python -m pytest -q tests")) == []


def test_an_installed_project_is_not_flagged(package_repo: Path, tmp_path: Path) -> None:
    """A module the checks' Python imports from outside the repository (installed, editable or not) is fine."""
    from harness.judge.safepath import safe_path_warnings
    from harness.plan.prd import load_prd

    prd = load_prd(package_repo / "PRD.json")
    assert safe_path_warnings(prd, package_repo)
    site = tmp_path / "site"
    site.mkdir()
    (site / "mypkg.py").write_text("VALUE = 3\n")
    wrapper = tmp_path / "python"
    import sys

    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    assert safe_path_warnings(prd, package_repo, wrapper) == []
