"""The agent's network is its own (`--sandbox bwrap`): a scripted hostile agent (`ralph run --agent command`)
tries every way out of its sandbox it can name, and only its declared model API answers.

The issue's reproduction: an agent under bwrap shared the host's network namespace, loopback included, and
POSTed its own job to a local Ray Job API (RAY_ADDRESS passed the scrub); the job ran outside the sandbox.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ExitCode
from harness.sandbox.environment import bwrap_available, bwrap_problem
from tests.fakes.local_server import answering
from tests.harness.conftest import git

pytestmark = pytest.mark.skipif(not bwrap_available(), reason=f"bwrap unusable: {bwrap_problem()}")

PLAN: dict[str, Any] = {
    "version": 1,
    "project": "network",
    "defaults": {"max_attempts": 1, "attempt_timeout_s": 60, "check_timeout_s": 30},
    "phases": [{"id": 1, "name": "Work", "approval": False}],
    "features": [{"id": "W-1", "phase": 1, "title": "do the work", "verify": [{"name": "work",
                                                                               "run": "test -f work.txt"}]}],
}

# What the hostile agent runs (with ralph's own interpreter, which the sandbox shows read-only): every probe's
# outcome goes into probe.json in the repository (ignored, so never committed), for the test to read.
PROBE = r'''
import json, os, socket, sys, urllib.request
host_port, api_url = int(sys.argv[1]), sys.argv[2]
out = {"env": sorted(os.environ), "proxy": os.environ.get("HTTPS_PROXY")}

def attempt(name, fn):
    try:
        out[name] = "ok: " + str(fn())
    except Exception as exc:
        out[name] = f"failed: {type(exc).__name__}: {exc}"

def direct(host, port):
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"GET /api/jobs/ HTTP/1.0\r\n\r\n")
        return s.recv(200)

def via_proxy(url):  # urllib reads http_proxy from the environment, as a CLI's client does
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.status, reply.read().decode()

def tunnel(target):  # CONNECT through the proxy the environment names
    proxy = os.environ["HTTPS_PROXY"].rsplit(":", 1)
    with socket.create_connection((proxy[0].split("//")[1], int(proxy[1])), timeout=5) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
        return s.recv(200).split(b"\r\n")[0]

attempt("direct_host_loopback", lambda: direct("127.0.0.1", host_port))
attempt("direct_api", lambda: direct("127.0.0.1", int(api_url.rsplit(":", 1)[1])))
attempt("proxy_host_loopback", lambda: via_proxy(f"http://127.0.0.1:{host_port}/api/jobs/"))
attempt("proxy_host_by_name", lambda: via_proxy(f"http://localhost:{host_port}/api/jobs/"))
attempt("tunnel_host_loopback", lambda: tunnel(f"127.0.0.1:{host_port}"))
attempt("tunnel_private", lambda: tunnel("10.11.12.13:8265"))
attempt("tunnel_metadata", lambda: tunnel("169.254.169.254:80"))
attempt("proxy_api", lambda: via_proxy(f"{api_url}/v1/models"))
attempt("ralph_dir", lambda: os.listdir(".ralph"))
attempt("ralph_dir_write", lambda: open(".ralph/planted", "w").write("x"))
json.dump(out, open("probe.json", "w"), indent=1)
'''


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "PRD.json").write_text(json.dumps(PLAN, indent=2))
    (repo / ".gitignore").write_text(".ralph/\nprobe.json\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "setup")
    return repo


def hostile(tmp_path: Path, host_port: int, api_url: str) -> str:
    """The agent: runs the probes, then does the honest work."""
    home = tmp_path / "agent"  # its own directory: the sandbox shows the agent's executable's directory
    home.mkdir(exist_ok=True)
    probe = home / "probe.py"
    probe.write_text(PROBE)
    script = home / "agent.sh"
    script.write_text(f"#!/bin/bash\ncat > /dev/null\n{shlex.quote(sys.executable)} {probe} {host_port} "
                      f"{shlex.quote(api_url)}\necho work > work.txt\n")
    script.chmod(0o755)
    return str(script)


def run(repo: Path, cmd: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["run", "-C", str(repo), "--agent", "command", "--agent-cmd", cmd, "--no-input",
                                    "--phase", "1", "--sandbox", "bwrap", *args])


def test_the_agent_reaches_its_model_api_and_nothing_else(project: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray Job API on the host's loopback (the issue's), named in RAY_ADDRESS and its kin: unreachable
    directly, through the proxy by address or name, and by CONNECT; private and metadata addresses refused;
    the declared fake model API answers through the proxy; `.ralph/` is empty and read-only."""
    ray, ray_hits = answering(b'{"job_id": "raysubmit_agent"}')
    api, api_hits = answering(b'{"data": [{"id": "fake-model"}]}')
    with ray, api:
        host_port = int(ray.base_url.rsplit(":", 1)[1])
        for name in ("RAY_ADDRESS", "RAY_DASHBOARD_ADDRESS", "RAY_JOB_HEADERS", "VAULT_ADDR", "DOCKER_SOCK"):
            monkeypatch.setenv(name, ray.base_url)
        result = run(project, hostile(tmp_path, host_port, api.base_url), "--agent-api", api.base_url)
    assert result.exit_code == ExitCode.OK, result.output
    probe = json.loads((project / "probe.json").read_text())
    assert ray_hits == [], "the agent reached a service on the host's loopback"
    for way in ("direct_host_loopback", "direct_api"):
        assert probe[way].startswith("failed: ConnectionRefusedError"), (way, probe[way])
    for way in ("proxy_host_loopback", "proxy_host_by_name"):
        assert probe[way].startswith("failed: HTTPError: HTTP Error 403"), (way, probe[way])
    for way in ("tunnel_host_loopback", "tunnel_private", "tunnel_metadata"):
        assert probe[way] == "ok: b'HTTP/1.1 403 Refused'", (way, probe[way])
    assert probe["proxy_api"] == """ok: (200, '{"data": [{"id": "fake-model"}]}')""", probe["proxy_api"]
    assert api_hits == ["/v1/models"]
    assert not {"RAY_ADDRESS", "RAY_DASHBOARD_ADDRESS", "RAY_JOB_HEADERS", "VAULT_ADDR", "DOCKER_SOCK",
                "NO_PROXY", "no_proxy"} & set(probe["env"])
    assert probe["ralph_dir"] == "ok: []" and "Read-only file system" in probe["ralph_dir_write"]
    assert (project / ".ralph" / "state.json").exists() and not (project / ".ralph" / "planted").exists()
    refusals = next((project / ".ralph" / "runs").glob("*/transcript.jsonl")).read_text()
    assert f"network: refused CONNECT 127.0.0.1:{host_port}" in refusals and "10.11.12.13:8265" in refusals


def test_an_agent_with_no_declared_api_has_no_network_at_all(project: Path, tmp_path: Path) -> None:
    """`--agent command` running a CLI ralph does not know, with no --agent-api: no proxy, nothing reachable."""
    api, api_hits = answering(b"{}")
    with api:
        port = int(api.base_url.rsplit(":", 1)[1])
        result = run(project, hostile(tmp_path, port, api.base_url))
    assert result.exit_code == ExitCode.OK, result.output
    probe = json.loads((project / "probe.json").read_text())
    assert probe["proxy"] is None and api_hits == []
    transcript = next((project / ".ralph" / "runs").glob("*/transcript.jsonl")).read_text()
    assert "network: none (no model API declared for this CLI; --agent-api adds one)" in transcript
    assert probe["direct_api"].startswith("failed: ConnectionRefusedError"), probe["direct_api"]
    assert probe["proxy_api"].startswith("failed: URLError"), probe["proxy_api"]


def test_a_malformed_agent_api_is_a_usage_error(project: Path, tmp_path: Path) -> None:
    result = run(project, hostile(tmp_path, 1, "http://127.0.0.1:1"), "--agent-api", "api.example.com")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "needs an http:// or https:// scheme" in result.output
