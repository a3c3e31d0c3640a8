from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.agents import AgentConfigError, make_agent
from harness.agents.base import Budget, Task
from harness.agents.command import CommandAgent
from harness.sandbox import environment as sandbox
from harness.sandbox import guards
from tests.fakes import cli_agents


def test_worker_gets_the_prompt_on_stdin(tmp_path: Path, repo: Path, make_task: Callable[..., Task]) -> None:
    agent = CommandAgent(cli_agents.worker(tmp_path))
    result = agent.run(make_task(system="FIRST LINE"), Budget(timeout_s=30))
    assert result.status == "completed", result.error
    assert (repo / "work.txt").read_text() == "FIRST LINE\n"
    assert result.transcript_path is not None and "wrote work.txt" in result.transcript_path.read_text()
    assert result.last_action == "wrote work.txt" and result.usage.cost_usd == 0.0


def test_worker_gets_the_prompt_as_a_file(tmp_path: Path, repo: Path, make_task: Callable[..., Task]) -> None:
    agent = CommandAgent(cli_agents.worker(tmp_path) + " {prompt_file}")
    assert agent.prompt_via == "file"
    assert agent.run(make_task(system="", prompt="VIA FILE"), Budget(timeout_s=30)).status == "completed"
    assert (repo / "work.txt").read_text() == "VIA FILE\n"


def test_hanging_agent_and_its_grandchild_are_killed_at_the_limit(
    tmp_path: Path, make_task: Callable[..., Task]
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    start = time.monotonic()
    result = CommandAgent(cli_agents.hanger(tmp_path, pid_file)).run(make_task(), Budget(timeout_s=1))
    assert result.status == "timeout" and "process group was killed" in (result.error or "")
    assert time.monotonic() - start < 6
    assert not cli_agents.alive(int(pid_file.read_text()))


def test_prd_tampering_is_detected_and_reverted(tmp_path: Path, repo: Path, make_task: Callable[..., Task]) -> None:
    prd = (repo / "PRD.json").read_text()
    before = guards.snapshot(repo)
    result = CommandAgent(cli_agents.prd_tamperer(tmp_path)).run(make_task(), Budget(timeout_s=30))
    assert result.status == "completed" and "all features pass" in result.summary  # its claim is advisory
    assert json.loads((repo / "PRD.json").read_text())["features"][0]["passes"] is True
    assert guards.check_and_restore(repo, before) == ["PRD.json"]
    assert (repo / "PRD.json").read_text() == prd


@pytest.mark.skipif(not sandbox.bwrap_available(), reason="bwrap unusable here")
def test_sandboxed_cli_cannot_write_outside_the_repo(
    tmp_path: Path, repo: Path, make_task: Callable[..., Task]
) -> None:
    target = Path("/var/tmp") / f".ralph-test-escape-{tmp_path.name}"  # writable here, read-only in the sandbox
    result = CommandAgent(cli_agents.outside_writer(tmp_path, target)).run(
        make_task(sandbox="bwrap"), Budget(timeout_s=30)
    )
    try:
        assert result.status == "completed" and "refused" in result.summary
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


@pytest.mark.skipif(not sandbox.bwrap_available(), reason="bwrap unusable here")
def test_a_sandboxed_cli_sees_an_empty_home_and_leaves_nothing_in_the_users(
    tmp_path: Path, repo: Path, make_task: Callable[..., Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under bwrap the agent copied ~/.ssh and ~/.aws into notes/, and could leave a hook in ~/.claude that the
    user's next session runs. Now the user's home is empty: nothing of it can be read, and what the CLI writes
    to its HOME is discarded."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("secret key\n")
    (home / ".claude").mkdir()
    monkeypatch.setenv("HOME", str(home))
    script = tmp_path / "agent.sh"
    script.write_text(f"#!/bin/bash\ncat > /dev/null\nmkdir -p notes\ncp {home}/.ssh/id_ed25519 notes/ 2>/dev/null\n"
                      "mkdir -p ~/.claude && echo '{\"hooks\": 1}' > ~/.claude/settings.json\n"
                      "echo home=$HOME\n")
    script.chmod(0o755)
    result = CommandAgent(str(script)).run(make_task(sandbox="bwrap"), Budget(timeout_s=30))
    assert result.status == "completed", result
    assert not (repo / "notes" / "id_ed25519").exists()
    assert not (home / ".claude" / "settings.json").exists()
    assert f"home={home}" not in result.summary


def test_nonzero_exit_is_an_error_with_the_output_tail(tmp_path: Path, make_task: Callable[..., Task]) -> None:
    result = CommandAgent(cli_agents.failer(tmp_path, code=3)).run(make_task(), Budget(timeout_s=30))
    assert result.status == "error"
    assert "exited with 3" in (result.error or "") and "could not reach the model" in (result.error or "")


CLAUDE_REPORT = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "num_turns": 7,
    "result": "Implemented the feature.",
    "total_cost_usd": 0.1234,
    "usage": {
        "input_tokens": 1500,
        "output_tokens": 800,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 9000,
    },
}


def test_claude_style_json_gives_usage_and_cost(tmp_path: Path, repo: Path, make_task: Callable[..., Task]) -> None:
    agent = CommandAgent(cli_agents.claude_json(tmp_path, CLAUDE_REPORT, filename="done.txt"))
    result = agent.run(make_task(), Budget(timeout_s=30))
    assert result.status == "completed" and result.summary == "Implemented the feature."
    assert result.turns == 7 and result.usage.cost_usd == pytest.approx(0.1234)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1500, 800)
    assert (result.usage.cache_creation_input_tokens, result.usage.cache_read_input_tokens) == (2000, 9000)
    assert (repo / "done.txt").exists()
    over = agent.run(make_task(attempt=2), Budget(timeout_s=30, max_cost_usd=0.05))
    assert over.status == "budget" and "$0.1234" in (over.error or "")


def test_claude_turn_limit_report_maps_to_turn_limit(tmp_path: Path, make_task: Callable[..., Task]) -> None:
    report = {**CLAUDE_REPORT, "subtype": "error_max_turns", "is_error": True, "result": ""}
    result = CommandAgent(cli_agents.claude_json(tmp_path, report)).run(make_task(), Budget(timeout_s=30, max_turns=5))
    assert result.status == "turn_limit"


def test_missing_executable_names_it_and_the_fix(make_task: Callable[..., Task]) -> None:
    result = make_agent("claude").run(make_task(), Budget(timeout_s=30))
    if result.status != "error" or "not found" not in (result.error or ""):
        pytest.skip("a real `claude` CLI is installed here")
    assert "'claude'" in (result.error or "") and "npm install -g @anthropic-ai/claude-code" in (result.error or "")
    custom = CommandAgent("FOO=1 no-such-agent-cli --go").run(make_task(), Budget(timeout_s=30))
    assert custom.status == "error" and "'no-such-agent-cli' was not found on PATH" in (custom.error or "")


def test_presets_and_factory_errors() -> None:
    claude = make_agent("command", agent_cmd="claude", model="claude-opus-4-5")
    assert isinstance(claude, CommandAgent) and claude.name == "claude" and claude.prompt_via == "stdin"
    assert "ANTHROPIC_API_KEY" in claude.pass_env
    aider = make_agent("aider")
    assert isinstance(aider, CommandAgent) and aider.prompt_via == "file"
    with pytest.raises(AgentConfigError, match="needs --agent-cmd"):
        make_agent("command")
    with pytest.raises(AgentConfigError, match=r"unknown placeholder\(s\) \['prompt'\]"):
        make_agent("command", agent_cmd="my-agent {prompt}")
    with pytest.raises(AgentConfigError, match="unknown agent 'gpt'"):
        make_agent("gpt")


@pytest.mark.skipif(not sandbox.bwrap_available(), reason="bwrap unusable here")
def test_a_sandboxed_codex_gets_a_private_copy_of_the_users_codex_home(
    tmp_path: Path, make_task: Callable[..., Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CODEX_HOME the user set used to be bound writable as it was: an agent could leave a `notify` command in
    its config.toml that the user's next codex session runs, and read their session history. Now the CLI sees a
    copy holding only config.toml and auth.json, and nothing it writes reaches the user's."""
    mine = tmp_path / "codex-home"
    (mine / "sessions").mkdir(parents=True)
    (mine / "config.toml").write_text('model = "gpt-6-sol"\n')
    (mine / "auth.json").write_text('{"token": "login"}\n')
    (mine / "sessions" / "rollout.jsonl").write_text("private history\n")
    monkeypatch.setenv("CODEX_HOME", str(mine))
    codex = tmp_path / "bin" / "codex"
    codex.parent.mkdir()
    codex.write_text("#!/bin/bash\ncat > /dev/null\n"
                     'echo "login=$(cat $CODEX_HOME/auth.json) history=$(cat $CODEX_HOME/sessions/rollout.jsonl '
                     f'{mine}/sessions/rollout.jsonl 2>/dev/null)"\n'
                     "echo 'notify = [\"sh\", \"-c\", \"touch /tmp/pwned\"]' >> $CODEX_HOME/config.toml\n"
                     "touch $CODEX_HOME/planted\n")
    codex.chmod(0o755)
    result = CommandAgent(f"{codex} exec --json").run(make_task(sandbox="bwrap"), Budget(timeout_s=30))
    assert 'login={"token": "login"}' in (result.summary + (result.error or "")), result
    assert "private history" not in result.summary + (result.error or "")
    assert (mine / "config.toml").read_text() == 'model = "gpt-6-sol"\n'
    assert sorted(p.name for p in mine.iterdir()) == ["auth.json", "config.toml", "sessions"]


def test_preflight_finds_an_agent_script_the_sandboxs_private_tmp_hides(tmp_path: Path, repo: Path) -> None:
    """Issue 24 (minor): `--agent-cmd "bash /tmp/…/agent.sh {prompt_file}"` under bwrap: bash exists, the script
    does not inside the sandbox (a private /tmp). Preflight says so, naming it, and no attempt is spent; the same
    script inside the repository, or the same command without the sandbox, passes preflight."""
    from harness.run.preflight import PreflightError, preflight

    outside = tmp_path / "scripts" / "agent.sh"
    outside.parent.mkdir()
    outside.write_text("#!/bin/sh\necho done\n")
    agent = CommandAgent(f"bash {outside} {{prompt_file}}")
    with pytest.raises(PreflightError, match=f"names {outside}, which the bwrap sandbox does not show"):
        preflight(agent, repo, "bwrap")
    assert "bash found" in preflight(agent, repo, "none")
    inside = repo / "agent.sh"
    inside.write_text(outside.read_text())
    assert "bash found" in preflight(CommandAgent(f"bash {inside} {{prompt_file}}"), repo, "bwrap")
    assert "bash found" in preflight(CommandAgent("bash agent.sh {prompt_file}"), repo, "bwrap")
