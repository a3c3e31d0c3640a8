"""The sandbox is on by default (`--sandbox auto`): bwrap on Linux, seatbelt on macOS, where they work;
otherwise none, with a warning on every run saying why and how to fix it. The run's header and its
`run-start` record name the sandbox, an explicit `--sandbox none` included.

The attack (issue 20): with no `--sandbox` flag the agent had the user's rights and could plant a `.pth`
file in ralph's own environment, which runs in every later Python process, the judge's included.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.run.session import describe_sandbox
from harness.sandbox import environment, seatbelt
from tests.harness.conftest import commit_plan

needs_bwrap = pytest.mark.skipif(not environment.bwrap_available(), reason="bubblewrap cannot create namespaces here")
PLAN: dict[str, Any] = {
    "version": 1, "project": "default-sandbox",
    "defaults": {"max_attempts": 1, "attempt_timeout_s": 60, "check_timeout_s": 60},
    "phases": [{"id": 1, "name": "Work", "approval": False}],
    "features": [{"id": "W-1", "phase": 1, "title": "work", "verify": [{"name": "work", "run": "test -f work.txt"}]}],
}
MISSING = f"bubblewrap (bwrap) is not installed; {environment.INSTALL_HINT}"


@pytest.fixture
def ralph_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ralph's own environment (sys.prefix), outside the repository; returns its site-packages."""
    prefix = tmp_path / "ralph-env"
    site = prefix / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    return site


def run_hostile(repo: Path, tmp_path: Path, site: Path, *flags: str) -> tuple[Any, str]:
    """`ralph run` with an agent that plants a .pth in ralph's environment, then does the work; returns
    the result and its output with whitespace collapsed (Rich wraps long lines)."""
    if not (repo / "PRD.json").exists():
        commit_plan(repo, PLAN)
    agent = tmp_path / "agent.sh"
    agent.write_text(f"#!/bin/bash\ncat > /dev/null\necho 'import os' > {site}/zz-evil.pth\necho done > work.txt\n")
    agent.chmod(0o755)
    result = CliRunner().invoke(app, ["run", "--agent", "command", "--agent-cmd", str(agent), "--no-input",
                                      *flags, "-C", str(repo)])
    return result, " ".join(result.output.split())


@needs_bwrap
def test_by_default_the_agent_cannot_change_ralphs_installed_code(repo: Path, tmp_path: Path, ralph_env: Path) -> None:
    result, said = run_hostile(repo, tmp_path, ralph_env)
    assert "sandbox: bwrap (--sandbox auto)" in said and "NO SANDBOX" not in said, said
    assert not (ralph_env / "zz-evil.pth").exists()
    assert result.exit_code == 0 and (repo / "work.txt").exists(), said  # the work itself went through
    assert "sandbox: bwrap" in (repo / "progress.txt").read_text()


def test_an_explicit_none_is_stated_and_gives_the_agent_the_users_rights(repo: Path, tmp_path: Path,
                                                                        ralph_env: Path) -> None:
    result, said = run_hostile(repo, tmp_path, ralph_env, "--sandbox", "none")
    assert "sandbox: none: no sandbox, the agent and the checks run with your rights, as --sandbox none asks" in said
    assert "NO SANDBOX" not in said  # chosen knowingly: no fallback warning
    assert (ralph_env / "zz-evil.pth").exists()  # what the default now prevents
    assert "sandbox: none" in (repo / "progress.txt").read_text()


def test_a_default_that_cannot_sandbox_warns_on_every_run_with_the_fix(repo: Path, tmp_path: Path, ralph_env: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(environment, "bwrap_problem", lambda: MISSING)
    for _ in range(2):  # the second run has nothing left to do, and still says it
        result, said = run_hostile(repo, tmp_path, ralph_env, "--phase", "1")
        assert "sandbox: none (--sandbox auto)" in said, said
        assert ("warning: NO SANDBOX: --sandbox auto (bwrap) is unavailable: bubblewrap (bwrap) is not installed; "
                "install it with `apt-get install -y bubblewrap`") in said
        assert "they can read your home and change ralph's installed code. Pass --sandbox none" in said
    assert "sandbox: none" in (repo / "progress.txt").read_text()


@pytest.mark.parametrize(("platform", "expected"), [("linux", "bwrap"), ("darwin", "seatbelt")])
def test_auto_is_the_sandbox_of_the_os(monkeypatch: pytest.MonkeyPatch, platform: str, expected: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(environment, "bwrap_problem", lambda: None)
    monkeypatch.setattr(seatbelt, "seatbelt_problem", lambda: None)
    assert environment.resolve_sandbox("auto") == (expected, None)
    assert environment.Environment("auto").sandboxed


def test_auto_on_a_mac_without_seatbelt_falls_back_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(seatbelt, "seatbelt_problem", lambda: "sandbox-exec cannot apply a profile here (denied)")
    kind, note = environment.resolve_sandbox("auto")
    assert kind == "none" and note is not None
    assert note.startswith("NO SANDBOX: --sandbox auto (seatbelt) is unavailable: sandbox-exec cannot apply")
    monkeypatch.setattr(sys, "platform", "win32")
    kind, note = environment.resolve_sandbox("auto")
    assert kind == "none" and "no sandbox for win32" in (note or "")


def test_seatbelt_is_refused_off_macos_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    seatbelt.seatbelt_problem.cache_clear()
    try:
        kind, note = environment.resolve_sandbox("seatbelt")
    finally:
        seatbelt.seatbelt_problem.cache_clear()
    assert kind == "none" and "exists only on macOS, and this is linux" in (note or "")


def test_the_header_says_what_each_sandbox_means() -> None:
    assert describe_sandbox("auto", "bwrap").startswith("bwrap (--sandbox auto): the agent writes only")
    assert "untested on a Mac" in describe_sandbox("seatbelt", "seatbelt")
    assert describe_sandbox("bwrap", "none").startswith("none (--sandbox bwrap): no sandbox")
