"""The CLI presets without the real CLIs: kinds, reports, credentials, codex config, sandbox mounts, preflight."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.agents import AGENT_KINDS, make_agent, reports
from harness.agents.base import Budget, Task
from harness.agents.command import CommandAgent
from harness.agents.presets import PRESETS, cli_for, codex_config, install_mounts
from harness.agents.pricing import PRICES_FILE, PriceTable
from harness.books.ledger import Ledger
from harness.cli import app
from harness.sandbox import environment as sandbox
from harness.settings import SettingsError, load_settings

bwrap_only = pytest.mark.skipif(not sandbox.bwrap_available(), reason="bwrap unusable here")


def script(path: Path, body: str, shebang: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{shebang or sys.executable}\n{body}")
    path.chmod(0o755)
    return path


# ------------------------------------------------------------------ one list of kinds


def test_settings_accept_every_kind_and_name_them_all_when_wrong(tmp_path: Path) -> None:
    for kind in AGENT_KINDS:
        assert load_settings(tmp_path, {"agent": kind}).agent == kind
    with pytest.raises(SettingsError) as err:
        load_settings(tmp_path, {"agent": "gpt"})
    assert all(f"'{kind}'" in str(err.value) for kind in AGENT_KINDS)


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_passes_through_ralph_run(name: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    prd = {"version": 1, "project": "p", "phases": [{"id": 1, "name": "One", "goal": "g"}],
           "features": [{"id": "F-1", "phase": 1, "title": "t", "verify": [{"name": "ok", "run": "true"}]}]}
    (repo / "PRD.json").write_text(json.dumps(prd))
    result = CliRunner().invoke(app, ["run", "-C", str(repo), "--phase", "1", "--agent", name, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"agent: {name} runs: {PRESETS[name].template}" in result.output
    (repo / ".ralph").mkdir()
    (repo / ".ralph" / "config.toml").write_text(f'agent = "{name}"\n')
    assert load_settings(repo).agent == name


def test_help_lists_the_kinds_from_the_one_list() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "300"})
    assert all(kind in result.output for kind in AGENT_KINDS)


# ------------------------------------------------------------------ each CLI's own report


def test_claude_report_and_its_turn_limit() -> None:
    text = json.dumps({"type": "result", "subtype": "error_max_turns", "is_error": True, "num_turns": 2,
                       "total_cost_usd": 0.01, "usage": {"input_tokens": 10, "output_tokens": 5}})
    report = reports.claude("noise\n" + text)
    assert report.outcome == "turn_limit" and report.turns == 2 and report.usage.cost_usd == 0.01


def test_codex_report_counts_cached_input_and_tool_turns() -> None:
    lines = [
        {"type": "thread.started", "thread_id": "t"},
        {"type": "item.completed", "item": {"type": "command_execution", "command": "ls", "exit_code": 0}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "done it"}},
        {"type": "turn.completed", "usage": {"input_tokens": 10000, "cached_input_tokens": 6000,
                                             "output_tokens": 120}},
    ]
    report = reports.codex("\n".join(json.dumps(x) for x in lines))
    assert (report.usage.input_tokens, report.usage.cache_read_input_tokens, report.usage.output_tokens) == (
        4000, 6000, 120)
    assert report.turns == 2 and report.summary == "done it" and not report.priced
    assert PriceTable.default().cost("gpt-6-sol", report.usage) == pytest.approx(0.0104)
    failed = reports.codex('{"type":"turn.failed","error":{"message":"quota"}}')
    assert failed.outcome == "error" and "quota" in failed.error


def test_aider_report_reads_its_token_and_cost_lines() -> None:
    text = ("Aider v0.86.2\nRepo-map: disabled\nI will create it.\n"
            "Tokens: 2.4k sent, 1.2k cache hit, 25 received. Cost: $0.0062 message, $0.0062 session.\n"
            "Tokens: 3.1k sent, 40 received. Cost: $0.0081 message, $0.0143 session.\n")
    report = reports.aider(text)
    assert report.turns == 2 and report.usage.cost_usd == pytest.approx(0.0143)
    assert (report.usage.input_tokens, report.usage.cache_read_input_tokens, report.usage.output_tokens) == (
        1200 + 3100, 1200, 65)
    assert report.summary == "I will create it."


def test_codex_cost_comes_from_the_price_table_and_a_missing_price_is_noted(
    tmp_path: Path, make_task: Callable[..., Task]
) -> None:
    event = {"type": "turn.completed", "usage": {"input_tokens": 1_000_000, "cached_input_tokens": 0,
                                                 "output_tokens": 0}}
    fake = script(tmp_path / "bin" / "codex", f"print({json.dumps(json.dumps(event))})\n")
    priced = CommandAgent(f"{fake} exec", model="gpt-6-sol").run(make_task(), Budget(timeout_s=30))
    assert priced.status == "completed" and priced.usage.cost_usd == pytest.approx(2.0)
    assert make_agent("codex").model == "gpt-6-sol"  # the preset passes it with --model, so it prices it
    assert CommandAgent(f"{fake} exec").model == ""  # a template that passes no model is not priced by a guess
    unknown = CommandAgent(f"{fake} exec", model="gpt-unknown-1").run(make_task(attempt=2), Budget(timeout_s=30))
    assert unknown.transcript_path is not None
    assert "no price for model 'gpt-unknown-1'" in unknown.transcript_path.read_text()


# ------------------------------------------------------------------ credentials


def test_a_template_naming_the_cli_by_path_gets_its_key_and_nothing_else(
    tmp_path: Path, repo: Path, make_task: Callable[..., Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("MY_PROXY_TOKEN", "proxy-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "gh-secret")
    body = "import os, pathlib\npathlib.Path('env.json').write_text(__import__('json').dumps(dict(os.environ)))\n"
    claude = script(tmp_path / "opt" / "bin" / "claude", body)
    assert cli_for(f"{claude} -p") is PRESETS["claude"]
    agent = make_agent("command", agent_cmd=f"{claude} -p")
    assert agent.run(make_task(), Budget(timeout_s=30)).status == "completed"
    seen = json.loads((repo / "env.json").read_text())
    assert seen["ANTHROPIC_API_KEY"] == "sk-ant-test"
    assert "MY_PROXY_TOKEN" not in seen and "GITHUB_TOKEN" not in seen

    other = script(tmp_path / "opt" / "bin" / "my-agent", body)
    allowed = make_agent("command", agent_cmd=str(other), agent_env=("MY_PROXY_TOKEN",))
    assert allowed.run(make_task(attempt=2), Budget(timeout_s=30)).status == "completed"
    seen = json.loads((repo / "env.json").read_text())
    assert seen["MY_PROXY_TOKEN"] == "proxy-secret" and "ANTHROPIC_API_KEY" not in seen


# ------------------------------------------------------------------ codex configuration


def test_codex_gets_a_provider_config_and_a_tmpdir_outside_its_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    scratch = tmp_path / "scratch"
    env = PRESETS["codex"].prepare(scratch)  # type: ignore[misc]
    home = Path(env["CODEX_HOME"])
    config = tomllib.loads((home / "config.toml").read_text())
    provider = config["model_providers"][config["model_provider"]]
    assert provider == {"name": provider["name"], "base_url": "http://127.0.0.1:9/v1", "env_key": "OPENAI_API_KEY",
                        "wire_api": "responses"}
    assert env["TMPDIR"] == str(scratch) and not home.is_relative_to(scratch)

    mine = tmp_path / "my-codex"
    mine.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(mine))
    assert PRESETS["codex"].prepare(scratch)["CODEX_HOME"] == str(mine)  # type: ignore[misc]
    assert not (mine / "config.toml").exists()
    assert 'base_url = "https://api.openai.com/v1"' in codex_config(None)

    # the user's own providers may name another key variable: it passes to codex, not to anything else
    (mine / "config.toml").write_text('[model_providers.corp]\nbase_url = "http://x"\nenv_key = "CORP_LLM_KEY"\n')
    assert "CORP_LLM_KEY" in make_agent("codex").pass_env
    assert "CORP_LLM_KEY" not in make_agent("claude").pass_env


# ------------------------------------------------------------------ the install tree under bwrap


@bwrap_only
def test_a_cli_installed_in_a_venv_under_tmp_runs_inside_the_sandbox(
    tmp_path: Path, repo: Path, make_task: Callable[..., Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"  # under /tmp, which the sandbox replaces with a private one
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    cli = script(venv / "bin" / "venv-cli", "import sys, pathlib\npathlib.Path('out.txt').write_text(sys.prefix)\n",
                 shebang=str(venv / "bin" / "python"))
    assert venv in install_mounts(cli)
    monkeypatch.setenv("PATH", f"{venv / 'bin'}:{os.environ['PATH']}")
    result = CommandAgent("venv-cli").run(make_task(sandbox="bwrap"), Budget(timeout_s=60))
    assert result.status == "completed", result.error
    assert (repo / "out.txt").read_text() == str(venv)


@bwrap_only
def test_an_npm_cli_under_tmp_finds_its_sibling_packages_inside_the_sandbox(
    tmp_path: Path, repo: Path, make_task: Callable[..., Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = tmp_path / "prefix" / "node_modules"
    helper = script(modules / "cli-linux-x64" / "bin" / "real-cli", "open('out.txt', 'w').write('native')\n")
    launcher = f'exec "$(dirname "$(readlink -f "$0")")/../../cli-linux-x64/bin/{helper.name}"\n'
    entry = script(modules / "cli" / "bin" / "cli.sh", launcher, shebang="/usr/bin/env bash")
    (modules / ".bin").mkdir()
    (modules / ".bin" / "npm-cli").symlink_to(entry)
    monkeypatch.setenv("PATH", f"{modules / '.bin'}:{os.environ['PATH']}")
    result = CommandAgent("npm-cli").run(make_task(sandbox="bwrap"), Budget(timeout_s=60))
    assert result.status == "completed", result.error
    assert (repo / "out.txt").read_text() == "native"


# ------------------------------------------------------------------ preflight


def _repo_with_plan(repo: Path) -> Path:
    prd = {"version": 1, "project": "p", "phases": [{"id": 1, "name": "One", "goal": "g"}],
           "features": [{"id": "F-1", "phase": 1, "title": "t", "verify": [{"name": "ok", "run": "true"}]}]}
    (repo / "PRD.json").write_text(json.dumps(prd))
    return repo


def _run(repo: Path, env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["run", "-C", str(repo), "--phase", "1", "--no-input", *args], env=env)


@pytest.mark.parametrize(
    ("case", "fix"),
    [
        ("no executable", "was not found on PATH; install it (npm install -g @anthropic-ai/claude-code@2.1.332)"),
        ("no key", "claude needs its API key: export ANTHROPIC_API_KEY"),
        ("broken", "(exit code 3): 2.1.332 (Claude Code) reinstall it"),  # inside the default sandbox, or not
    ],
)
def test_preflight_refuses_with_the_fix_and_charges_nothing(
    case: str, fix: str, tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo_with_plan(repo)
    bindir = tmp_path / "bin"
    if case != "no executable":
        code = 3 if case == "broken" else 0
        script(bindir / "claude", f"import sys\nprint('2.1.332 (Claude Code)')\nsys.exit({code})\n")
    for name in PRESETS["claude"].credentials:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    if case != "no key":
        env["ANTHROPIC_API_KEY"] = "sk-test"
    result = _run(repo, env, "--agent", "claude")
    assert result.exit_code == 2, result.output
    assert fix in " ".join(result.output.split())
    assert Ledger(repo).feature("F-1").attempts == 0
    assert "attempt" not in ((repo / "progress.txt").read_text() if (repo / "progress.txt").exists() else "")


def test_preflight_passes_and_says_which_version(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _repo_with_plan(repo)
    script(tmp_path / "bin" / "aider", "print('aider 0.86.2')\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    from harness.run.preflight import preflight

    assert preflight(make_agent("aider"), repo, "none") == "aider: aider 0.86.2"
    # a command ralph does not know need not answer --version: `sh --version` is an error, `sh` is fine
    assert preflight(make_agent("command", agent_cmd="sh my-agent.sh"), repo, "none") == "command: sh found"


# ------------------------------------------------------------------ prices and the default model


def test_prices_come_from_the_dated_file_and_the_default_model_from_the_sdk() -> None:
    import typing

    from anthropic.types import Model

    from harness.agents.anthropic import default_model

    meta = tomllib.loads(PRICES_FILE.read_text())["meta"]
    assert meta["checked"] and "platform.claude.com" in PRICES_FILE.read_text()
    model = default_model()
    listed = [n for arg in typing.get_args(Model) for n in typing.get_args(arg)]
    assert model in listed and model.startswith("claude-sonnet-")
    table = PriceTable.default()
    assert table.unpriced_warning(model) is None, "the default model must have a price"
    assert "no price for model 'claude-nova-9'" in (table.unpriced_warning("claude-nova-9") or "")


@bwrap_only
def test_an_agent_script_in_a_repository_folder_can_write_beside_itself(
    repo: Path, make_task: Callable[..., Task]
) -> None:
    """Issue 23: `--agent-cmd experiments/x/agent.sh` under bwrap. The install-tree mounts (which keep a CLI visible
    under the private /tmp) bound the script's own folder read-only, so the scripted optimize agent could not write
    the recipe beside it (`sed -i`: Read-only file system). A folder inside the repository is visible already."""
    folder = repo / "experiments" / "x"
    agent = script(folder / "agent.sh", "echo changed > experiments/x/recipe.txt\n", shebang="/bin/bash")
    result = CommandAgent(str(agent)).run(make_task(sandbox="bwrap"), Budget(timeout_s=60))
    assert result.status == "completed", result.error
    assert (folder / "recipe.txt").read_text() == "changed\n"
    assert agent.is_file()
