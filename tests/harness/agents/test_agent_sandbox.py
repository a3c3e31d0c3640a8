from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.agents.tools import Workspace
from harness.sandbox import environment as sandbox

needs_bwrap = pytest.mark.skipif(not sandbox.bwrap_available(), reason=f"bwrap unusable: {sandbox.bwrap_problem()}")


@needs_bwrap
def test_sandboxed_bash_writes_only_repo_and_scratch(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with Workspace(repo, sandbox_kind="bwrap", protected=["src/model.py"]) as ws:
        out = ws.bash(
            f"touch made.txt && echo ok1; touch $TMPDIR/scratch.txt && echo ok2; touch {outside}/x; "
            "echo '{}' > PRD.json; touch .git/evil; echo hacked > src/model.py; true"
        )
    assert "ok1" in out.text and "ok2" in out.text
    assert out.text.count("Read-only file system") == 3  # PRD.json, .git, the protected glob
    assert f"cannot touch '{outside}/x'" in out.text  # the host's /tmp is not even visible
    assert (repo / "made.txt").exists() and list(outside.iterdir()) == []
    assert '"passes": false' in (repo / "PRD.json").read_text()
    assert (repo / "src" / "model.py").read_text() == "def f():\n    return 1\n"
    assert ws.scratch is not None and not ws.scratch.exists()  # cleaned up on close


@needs_bwrap
def test_sandboxed_bash_has_no_network(repo: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        connect = f'import socket; socket.create_connection(("127.0.0.1", {port}), timeout=2); print("connected")'
        probe = f"python3 -c '{connect}'"
        assert "connected" in Workspace(repo).bash(probe).text  # control: reachable without the sandbox
        with Workspace(repo, sandbox_kind="bwrap") as ws:
            out = ws.bash(probe)
    assert "connected" not in out.text and "[exit code 1]" in out.text


def test_wrap_cuts_network_only_when_asked(tmp_path: Path) -> None:
    with_net = sandbox.wrap("echo hi", tmp_path, tmp_path, network=True)
    without = sandbox.wrap(["echo", "hi"], tmp_path, tmp_path, network=False)
    assert "--unshare-net" not in with_net and with_net[-3:] == ["bash", "-c", "echo hi"]
    assert "--unshare-net" in without and without[-2:] == ["echo", "hi"]


def test_missing_bwrap_falls_back_to_none_with_a_reason(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed; install it")
    with Workspace(repo, sandbox_kind="bwrap") as ws:
        assert ws.sandbox == "none"
        assert ws.note is not None and "not installed" in ws.note and "--sandbox none" in ws.note
        assert "[exit code 0]" in ws.bash("true").text
    with pytest.raises(ValueError, match="unknown sandbox"):
        sandbox.resolve_sandbox("docker")
