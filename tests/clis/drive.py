"""What the real-CLI scenarios share: a clean environment that puts the CLI on PATH beside the fake API, ralph as a
fresh process, the fake each CLI talks to, and the proof that the agent ran in its own network namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sandbox import environment as sandbox_module
from tests.fakes.cli_apis import FakeChat, FakeMessages, FakeResponses

FAKES = {"claude": FakeMessages, "codex": FakeResponses, "aider": FakeChat}
KEY = "sk-ralph-test-0123456789"
needs_bwrap = pytest.mark.skipif(not sandbox_module.bwrap_available(),
                                 reason="bubblewrap cannot create namespaces here")


def ralph_env(tmp_path: Path, exe: Path, api_env: dict[str, str]) -> dict[str, str]:
    """A clean HOME, the CLI on PATH through a bin directory under /tmp, the fake API and its key."""
    bindir, home = tmp_path / "bin", tmp_path / "home"
    bindir.mkdir()
    home.mkdir()
    (bindir / exe.name).symlink_to(exe)
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM", "USER", "LOGNAME")}
    return {**keep, "HOME": str(home), "PATH": f"{bindir}:{Path(sys.executable).parent}:{keep.get('PATH', '')}",
            "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", **api_env}


def ralph(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ralph ARGS` as a fresh process in `env`."""
    command = [sys.executable, "-c", "from harness.cli import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def run_phase(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ralph run` on phase 1 of `repo`, with no prompts."""
    return ralph(env, "run", "-C", str(repo), "--phase", "1", "--no-input", *args)


def assert_own_network(transcript: Path, api_base_url: str) -> None:
    """The agent of `transcript` ran under bwrap in its own network namespace: the fake API (on the host's loopback)
    only through ralph's proxy."""
    text = transcript.read_text()
    assert f"network: the agent reaches only {api_base_url.removeprefix('http://')}," in text, text[-2000:]
