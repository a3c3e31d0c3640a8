"""Where each agent's network reaches under `--sandbox bwrap`: its own model API, read from its settings.

The end-to-end attacks are in tests/harness/test_judge_network.py; these pin each backend's allow-list and
the wrapping that enforces it.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.agents import make_agent
from harness.agents.base import Budget, Task
from harness.agents.command import CommandAgent
from harness.run.preflight import PreflightError, preflight
from harness.sandbox import environment as sandbox
from harness.sandbox.network import PROXY_PORT, Egress, Endpoint
from harness.sandbox.proc import descendants
from tests.fakes.local_server import answering

BASE_VARS = ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "CODEX_HOME", "OPENAI_API_KEY",
             "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY")


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BASE_VARS:
        monkeypatch.delenv(name, raising=False)


def allowed(agent: object) -> set[str]:
    assert isinstance(agent, CommandAgent)
    return {str(e) for e in agent.egress().allowed}


def test_claude_reaches_its_base_url_or_anthropics_api(monkeypatch: pytest.MonkeyPatch) -> None:
    assert allowed(make_agent("claude")) == {"api.anthropic.com:443"}
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:4010")
    assert allowed(make_agent("claude")) == {"127.0.0.1:4010"}


def test_codex_reaches_its_provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert allowed(make_agent("codex")) == {"api.openai.com:443"}
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:4020/v1")
    assert allowed(make_agent("codex")) == {"127.0.0.1:4020"}
    own = tmp_path / "codex-home"  # the user's own CODEX_HOME: every provider it declares
    own.mkdir()
    (own / "config.toml").write_text('[model_providers.corp]\nbase_url = "https://llm.corp.example/v1"\n'
                                     'env_key = "CORP_KEY"\n')
    monkeypatch.setenv("CODEX_HOME", str(own))
    assert allowed(make_agent("codex")) == {"llm.corp.example:443", "127.0.0.1:4020"}


def test_aider_reaches_the_providers_whose_keys_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    assert allowed(make_agent("aider")) == {"api.openai.com:443"}  # none set: its default model's
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:4030/v1")
    assert allowed(make_agent("aider")) == {"api.anthropic.com:443", "127.0.0.1:4030"}


def test_a_cli_ralph_does_not_know_reaches_only_what_is_declared() -> None:
    assert allowed(make_agent("command", agent_cmd="mycli --go")) == set()
    agent = make_agent("command", agent_cmd="mycli --go", agent_api=("https://llm.example:8443",))
    assert allowed(agent) == {"llm.example:8443"}
    assert allowed(make_agent("claude", agent_api=("https://gateway.example",))) == {
        "api.anthropic.com:443", "gateway.example:443"}


def test_wrap_with_a_proxy_cuts_the_network_and_starts_the_relay_first(tmp_path: Path) -> None:
    sock = tmp_path / "net" / "proxy.sock"
    argv = sandbox.wrap("echo hi", tmp_path, tmp_path, network=False, proxy=sock)
    assert "--unshare-net" in argv
    assert argv[argv.index(str(sock.parent)) - 1] == "--ro-bind"
    start = argv.index("--") + 1
    assert argv[start:start + 4] == [sys.executable, "-I", "-S", "-c"]
    assert argv[start + 5:] == [str(sock), str(PROXY_PORT), "bash", "-c", "echo hi"]
    with pytest.raises(AssertionError):
        sandbox.wrap("echo hi", tmp_path, tmp_path, network=True, proxy=sock)


def relays() -> list[int]:
    """This process's descendants running relay.py (its source is their `-c` argument); another test's, in
    another worker, are not ours."""
    marker = sandbox.relay_source().splitlines()[0].encode()
    found = []
    for pid in descendants():
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes() and Path(f"/proc/{pid}/stat").read_text(
                    ).rsplit(")", 1)[1].split()[0] != "Z":
                found.append(pid)
        except OSError:
            continue
    return found


needs_bwrap = pytest.mark.skipif(not sandbox.bwrap_available(), reason=f"bwrap unusable: {sandbox.bwrap_problem()}")


@needs_bwrap
def test_a_sandboxed_cli_reaches_its_api_through_the_proxy_and_the_attempt_records_the_rest(
        make_task: Callable[..., Task], tmp_path: Path) -> None:
    """The agent layer: a CLI (here curl, as `--agent command`) under bwrap, its API declared."""
    api, api_hits = answering(b"model-api")
    other, other_hits = answering(b"host-service")
    with api, other:
        cmd = (f"curl -sS -m 5 {api.base_url}/v1/models; echo; curl -sS -m 5 {other.base_url}/x; echo; "
               f"curl -sS -m 5 --noproxy '*' {other.base_url}/x; echo")
        agent = CommandAgent(cmd, api=(api.base_url,))
        result = agent.run(make_task(sandbox="bwrap"), Budget(timeout_s=60))
    transcript = (result.transcript_path or Path()).read_text()
    assert relays() == [], "the relay outlived its attempt"
    assert "model-api" in transcript and api_hits == ["/v1/models"]
    assert other_hits == [] and "Failed to connect" in transcript
    assert f"ralph: network: refused GET 127.0.0.1:{int(other.base_url.rsplit(':', 1)[1])}" in transcript
    assert f"ralph: network: the agent reaches only {Endpoint.from_url(api.base_url)}" in transcript


@needs_bwrap
@pytest.mark.parametrize("where", ["abstract", "/run"])
def test_a_unix_socket_of_the_hosts_is_out_of_reach(make_task: Callable[..., Task], tmp_path: Path, where: str) -> None:
    """Unix sockets are network endpoints a read-only mount does not close: an abstract one (a session bus, an
    X server: no file to hide) belongs to the network namespace; a file one in /run (Docker's, the system
    bus's, a database's) is hidden with /run."""
    name = f"ralph-test-{os.getpid()}-{time.monotonic_ns()}"
    address = "\0" + name if where == "abstract" else f"/run/{name}.sock"
    if where == "/run" and not os.access("/run", os.W_OK):
        pytest.skip("cannot create a socket in /run as this user")
    probe = tmp_path / "agent" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
                     "try:\n    s.connect(sys.argv[1].replace('@', '\\0')); print('REACHED')\n"
                     "except OSError as e:\n    print('refused:', e)\n")
    script = probe.with_name("agent.sh")  # the sandbox shows the agent executable's directory
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {probe} '{address.replace(chr(0), '@')}'\n")
    script.chmod(0o755)
    try:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(address)
            listener.listen()
            agent = CommandAgent(str(script), api=("https://api.anthropic.com",))
            result = agent.run(make_task(sandbox="bwrap"), Budget(timeout_s=60))
            control = CommandAgent(str(script)).run(make_task(sandbox="none", attempt=2), Budget(timeout_s=60))
    finally:
        if where == "/run":
            Path(address).unlink(missing_ok=True)
    assert "REACHED" in (control.transcript_path or Path()).read_text()  # the probe can tell
    transcript = (result.transcript_path or Path()).read_text()
    assert "REACHED" not in transcript and "refused: [Errno" in transcript, transcript


@needs_bwrap
def test_the_relay_runs_while_its_command_does_and_not_after(tmp_path: Path) -> None:
    done: list[object] = []
    egress = Egress.to(["http://127.0.0.1:9"])
    env = {"PATH": os.environ["PATH"]}
    worker = threading.Thread(target=lambda: done.append(sandbox.Environment("bwrap").run(
        "sleep 3", tmp_path, timeout_s=30, env=env, network=egress)))
    worker.start()
    seen: list[int] = []
    for _ in range(100):
        seen = seen or relays()
        time.sleep(0.02)
    worker.join()
    assert seen, "no relay ran beside the command (the check below would prove nothing)"
    assert relays() == [] and done


def test_without_a_sandbox_nothing_is_pretended(make_task: Callable[..., Task]) -> None:
    """--sandbox none cannot cut a network: the agent keeps the host's and no proxy is set up or claimed."""
    api, api_hits = answering(b"model-api")
    with api:
        agent = CommandAgent(f"curl -sS -m 5 {api.base_url}/direct; echo; env | grep -ci _proxy || true",
                             api=("https://api.example.com",))
        result = agent.run(make_task(sandbox="none"), Budget(timeout_s=60))
    transcript = (result.transcript_path or Path()).read_text()
    assert api_hits == ["/direct"] and "network:" not in transcript



@needs_bwrap
def test_preflight_says_where_the_network_reaches(repo: Path) -> None:
    agent = make_agent("command", agent_cmd="sh my-agent.sh", agent_api=("http://127.0.0.1:4040",))
    assert preflight(agent, repo, "bwrap") == "command: sh found; its network reaches 127.0.0.1:4040"
    assert preflight(make_agent("command", agent_cmd="sh my-agent.sh"), repo, "bwrap") == (
        "command: sh found; its network reaches nothing")
    assert preflight(agent, repo, "none") == "command: sh found"


def test_a_base_url_without_a_host_is_refused_before_any_attempt(repo: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "claude"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 2.1.332\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "localhost:4000")  # no scheme: no host a proxy could allow
    with pytest.raises(PreflightError, match="needs an http:// or https:// scheme.*base URL variable"):
        preflight(make_agent("claude"), repo, "none")
