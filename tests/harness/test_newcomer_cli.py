"""The newcomer's first commands: start-up without heavy imports, --version, -h, flags, completion,
`ralph run` choosing its phase, the dry run telling the truth, failing checks explained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import __version__
from harness.cli import app
from tests.harness.conftest import git

HEAVY = ("anthropic", "torch", "wandb", "kornia", "sklearn", "matplotlib", "numpy")


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def loaded_after(code: str) -> list[str]:
    """Heavy modules present in a fresh interpreter after running `code`."""
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_importing_the_cli_loads_no_agent_or_lab_library() -> None:
    assert loaded_after("import harness.cli") == []


def test_status_and_validate_load_no_agent_or_lab_library(prd_repo: Path) -> None:
    for command in ("status", "validate"):
        code = ("from typer.testing import CliRunner\nfrom harness.cli import app\n"
                f"r = CliRunner().invoke(app, [{command!r}, '-C', {str(prd_repo)!r}])\nassert r.exit_code == 0, r.output")
        assert loaded_after(code) == [], command


def test_run_loads_the_anthropic_sdk_only_to_call_the_api(prd_repo: Path) -> None:
    """The dry run names the default model and preflight refuses a missing key, both without the SDK
    (seconds to import); the agent's first API call is what loads it (tests/harness/agents drive that)."""
    invoke = ("import os\nfrom typer.testing import CliRunner\nfrom harness.cli import app\n"
              "os.environ.pop('ANTHROPIC_API_KEY', None); os.environ.pop('ANTHROPIC_AUTH_TOKEN', None)\n"
              "r = CliRunner().invoke(app, {args!r})\nassert r.exit_code == {code}, r.output\n")
    dry = invoke.format(args=["run", "--dry-run", "-C", str(prd_repo)], code=0)
    assert loaded_after(dry + "assert 'agent: anthropic, model claude-' in r.output") == []
    refused = invoke.format(args=["run", "--no-input", "--allow-dirty", "-C", str(prd_repo)], code=2)
    assert loaded_after(refused + "assert 'ANTHROPIC_API_KEY' in r.output") == []


def test_version_short_help_and_completion() -> None:
    assert ralph("--version").output.strip() == f"ralph {__version__}"
    assert ralph("-V").exit_code == 0
    short = ralph("-h")
    assert short.exit_code == 0 and "Commands:" in short.output and "--install-completion" in short.output
    sub = ralph("run", "-h")
    assert sub.exit_code == 0 and "--dry-run" in sub.output
    assert "<bool>" not in short.output + sub.output  # flags take no value, so they show none


def test_run_defaults_to_the_first_phase_not_done(prd_repo: Path) -> None:
    result = ralph("run", "--dry-run", "-C", prd_repo)
    assert result.exit_code == 0, result.output
    assert "phase 1 (Baseline): the first phase not done" in result.output
    for fid in ("FEAT-1", "FEAT-2"):
        assert ralph("verify", fid, "--commit", "-C", prd_repo).exit_code == 0
    assert ralph("verify", "--phase", "1", "-C", prd_repo).exit_code == 0
    assert ralph("approve", "1", "--by", "ana", "-C", prd_repo).exit_code == 0
    after = ralph("run", "--dry-run", "-C", prd_repo)
    # phase 2 has no features yet ("planned"), so nothing is left to do
    assert after.exit_code == 2 and "every phase with features is done" in after.output


def test_dry_run_shows_agent_budgets_and_common_prompt_once_and_true_dependencies(prd_repo: Path) -> None:
    out = ralph("run", "--dry-run", "--max-cost-usd", "3", "-C", prd_repo).output
    assert out.count("agent: anthropic, model ") == 1 and out.count("budgets: ") == 1 and "$3, " in out
    assert out.count("You are a coding agent") == 1  # the common system part, once
    assert out.count("# Feature FEAT-") == 2
    assert "Builds on (not verified yet): FEAT-1 (pending)" in out
    assert "verified by the harness): FEAT-1" not in out
    assert "starts only once FEAT-1 passes" in out
    ralph("verify", "FEAT-1", "-C", prd_repo)
    out = ralph("run", "--dry-run", "--feature", "FEAT-2", "-C", prd_repo).output
    assert "Builds on (verified by the harness): FEAT-1" in out and "not verified yet" not in out


def failing_plan(prd_repo: Path) -> None:
    plan = json.loads((prd_repo / "PRD.json").read_text())
    plan["features"][0]["verify"] = [{"name": "tests", "run": "echo collecting; echo 'E   no such dir: tests/lab' >&2; exit 4"}]
    (prd_repo / "PRD.json").write_text(json.dumps(plan))


def test_a_failing_check_shows_its_last_lines_and_log_in_verify_and_status(prd_repo: Path) -> None:
    failing_plan(prd_repo)
    result = ralph("verify", "FEAT-1", "-C", prd_repo)
    assert result.exit_code == 1
    assert "no such dir: tests/lab" in result.output and "full log: .ralph/runs/" in result.output
    log = result.output.split("full log: ", 1)[1].split()[0]
    assert "no such dir: tests/lab" in (prd_repo / log).read_text()
    board = ralph("status", "-C", prd_repo).output
    assert "FEAT-1 · tests: fail, exit 4" in board and "no such dir: tests/lab" in board and log in board


def test_a_failing_check_shows_its_last_lines_in_run(prd_repo: Path, tmp_path: Path) -> None:
    import yaml

    failing_plan(prd_repo)
    (prd_repo / ".gitignore").write_text(".ralph/\n")
    git(prd_repo, "add", "-A")
    git(prd_repo, "commit", "-qm", "plan")
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"features": {"FEAT-1": [[{"write": "x.txt", "content": "x"}]]}}))
    result = ralph("run", "--agent", "replay", "--agent-cmd", script, "--max-iterations", "1", "--no-input",
                   "-C", prd_repo)
    assert result.exit_code == 4, result.output  # the one allowed attempt is spent
    assert "no such dir: tests/lab" in result.output and "full log: .ralph/runs/" in result.output


def test_shell_completion_completes_commands_and_options() -> None:
    exe = Path(sys.executable).parent / "ralph"
    if not exe.exists():
        pytest.skip("the ralph console script is not installed next to this interpreter (pip install -e .)")
    env = {"PATH": str(exe.parent), "_RALPH_COMPLETE": "complete_bash", "COMP_WORDS": "ralph ru", "COMP_CWORD": "1"}
    out = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60).stdout
    assert out.split() == ["run"]
    env.update(COMP_WORDS="ralph show --at", COMP_CWORD="2")
    assert "--attempt" in subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60).stdout


def test_a_neighbour_module_that_checks_cannot_import_is_explained(prd_repo: Path) -> None:
    """Checks run with PYTHONSAFEPATH=1, so `python train.py` does not see data.py beside it: the
    failure says why and how to fix it, and the fix it names works."""
    (prd_repo / "data.py").write_text("VALUE = 1\n")
    (prd_repo / "train.py").write_text("from data import VALUE\nprint('value', VALUE)\n")
    plan = json.loads((prd_repo / "PRD.json").read_text())
    plan["features"][0]["verify"] = [{"name": "train", "run": "python train.py"}]
    (prd_repo / "PRD.json").write_text(json.dumps(plan))
    result = ralph("verify", "FEAT-1", "-C", prd_repo)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "No module named 'data'" in out
    assert "hint: 'data' is in the repository (data.py), but checks run with PYTHONSAFEPATH=1" in out
    assert "PYTHONPATH=." in ralph("status", "-C", prd_repo).output
    plan["features"][0]["verify"] = [{"name": "train", "run": "PYTHONPATH=. python train.py"}]
    (prd_repo / "PRD.json").write_text(json.dumps(plan))
    fixed = ralph("verify", "FEAT-1", "-C", prd_repo)
    assert fixed.exit_code == 0 and "hint:" not in fixed.output


def test_status_and_dry_run_load_neither_gitpython_nor_the_judge(prd_repo: Path) -> None:
    """Issue 24 (speed): GitPython alone costs about a bare `import typer, rich, pydantic`; the read-only commands
    ask git itself, and the dry run's prompts come from run/preview.py, not the loop."""
    git(prd_repo, "add", "-A")
    git(prd_repo, "commit", "-q", "-m", "plan")
    heavy = ("git", "harness.judge.verify", "harness.run.loop", "harness.books.git.commits")
    for args in (["status"], ["run", "--dry-run"], ["validate"]):
        code = ("import sys\nfrom typer.testing import CliRunner\nfrom harness.cli import app\n"
                f"r = CliRunner().invoke(app, [*{args!r}, '-C', {str(prd_repo)!r}])\nassert r.exit_code == 0, r.output\n"
                f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [], args
