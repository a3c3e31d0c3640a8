"""`ralph run --agent claude|codex|aider` end to end: the real CLIs, pinned, against local fake APIs.

Each scenario drives a one-feature phase: the scripted model writes greeting.txt through the
CLI's own tools, ralph verifies (a check that also proves the key is not in its environment),
commits with its trailers and stops at the approval gate (exit 3).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.clis.drive import FAKES, KEY, assert_own_network, needs_bwrap, ralph_env, run_phase
from tests.fakes.cli_apis import FakeMessages, Work, Write
from tests.harness.conftest import commit_plan, git, init_repo

TITLE = "Write the greeting file"


def plan(name: str) -> dict:
    return {
        "version": 1,
        "project": "cli-e2e",
        "defaults": {"max_attempts": 1, "attempt_timeout_s": 240, "check_timeout_s": 30},
        "phases": [{"id": 1, "name": "Greeting", "goal": "a greeting exists", "approval": True}],
        "features": [{
            "id": "FEAT-1",
            "phase": 1,
            "title": TITLE,
            "description": f"Create greeting.txt containing the line: hello from {name}",
            "verify": [
                {"name": "greeting", "run": f"grep -qx 'hello from {name}' greeting.txt"},
                {"name": "checks see no key", "run": 'test -z "${ANTHROPIC_API_KEY:-}${OPENAI_API_KEY:-}"'},
            ],
        }],
    }


def project(tmp_path: Path, name: str) -> Path:
    return commit_plan(init_repo(tmp_path / "repo"), plan(name))


def greeting(repo: Path, name: str) -> Work:
    return Work(str(repo), [Write("greeting.txt", f"hello from {name}\n")], when=TITLE)


SANDBOXES = ["none", pytest.param("bwrap", marks=needs_bwrap)]


@pytest.mark.parametrize("sandbox", SANDBOXES)
@pytest.mark.parametrize("name", ["claude", "codex", "aider"])
def test_real_cli_runs_a_feature_to_the_approval_gate(tmp_path: Path, real_cli, name: str, sandbox: str) -> None:
    exe = real_cli(name)
    repo = project(tmp_path, name)
    with FAKES[name](greeting(repo, name)) as api:
        env = ralph_env(tmp_path, exe, api.env(KEY))
        done = run_phase(repo, env, "--agent", name, "--sandbox", sandbox, "--max-turns", "8")
    output = done.stdout + done.stderr
    assert done.returncode == 3, output  # awaiting approval: the feature passed, the phase is done
    assert api.keys() == {KEY}, "the CLI did not send the key ralph passed it"
    assert TITLE in api.prompts(), "ralph's prompt did not reach the API"

    subjects = git(repo, "log", "--format=%s").splitlines()
    assert subjects[-1] == "plan" and len(subjects) == 2, subjects  # ralph's commit only: nothing by the CLI
    assert "Ralph-Feature: FEAT-1" in git(repo, "log", "-1", "--format=%(trailers)")
    assert "greeting.txt" in git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert git(repo, "show", "HEAD:greeting.txt") == f"hello from {name}"
    assert (repo / ".gitignore").read_text() == ".ralph/\n"  # aider's .gitignore edit is off

    progress = (repo / "progress.txt").read_text()
    line = next(line for line in progress.splitlines() if line.strip().startswith(f"agent: {name}"))
    tokens = int(re.search(r"tokens (\d+)", line)[1])
    cost = float(re.search(r"cost \$([\d.]+)", line)[1])
    turns = int(re.search(r"turns (\d+)", line)[1])
    assert tokens > 0 and cost > 0 and turns >= 1, line
    print(f"\n{name} --sandbox {sandbox}: exit {done.returncode}; {line.strip()}")
    if sandbox == "bwrap":  # its own network namespace: the fake API (on the host's loopback) only through the proxy
        transcript = next((repo / ".ralph" / "runs").glob("*/transcript.jsonl"))
        assert_own_network(transcript, api.base_url)
        print("\n".join(line for line in transcript.read_text().splitlines() if "network: refused" in line))


def test_claude_preflight_needs_the_key_and_a_turn_limit_is_a_turn_limit(tmp_path: Path, real_cli) -> None:
    exe = real_cli("claude")
    repo = project(tmp_path, "claude")
    with FakeMessages(greeting(repo, "claude")) as api:
        env = ralph_env(tmp_path, exe, api.env(KEY))
        missing = run_phase(repo, {k: v for k, v in env.items() if k != "ANTHROPIC_API_KEY"}, "--agent", "claude")
        assert missing.returncode == 2 and "ANTHROPIC_API_KEY" in missing.stderr, missing.stderr
        assert not api.seen and not (repo / "progress.txt").exists()  # preflight: nothing run, nothing charged
        limited = run_phase(repo, env, "--agent", "claude", "--max-turns", "1")
    # claude stops at --max-turns 1 with `subtype: error_max_turns` and exit 1: a turn limit, not an
    # error; the file it wrote in that turn is still judged by the checks, which pass
    assert limited.returncode == 3, limited.stdout + limited.stderr
    assert "agent status: turn_limit" in (repo / "progress.txt").read_text()
