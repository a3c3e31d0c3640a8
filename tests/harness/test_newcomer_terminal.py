"""The approval prompt in a real terminal: `ralph run` under tmux, driven to the prompt, the answer
typed, the screen read back. The live panel must be gone while the question is asked, the typed
answer must be echoed, and nothing of the panel may be left over the prompt."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.books.ledger import Ledger
from tests.harness.conftest import git

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (`make setup` installs it where apt-get exists)")

QUESTION = "approve, reject, or stop"
PLAN = {
    "version": 1, "project": "tty-test",
    "defaults": {"max_attempts": 2, "attempt_timeout_s": 60, "check_timeout_s": 30},
    "phases": [{"id": 1, "name": "Build", "exit": [{"name": "exit ok", "run": "test -f a.txt"}], "approval": True}],
    "features": [{"id": "FEAT-A", "phase": 1, "title": "write a",
                  "verify": [{"name": "a exists", "run": "sleep 1 && test -f a.txt"}]}],
}


class Tmux:
    """A private tmux server (its own socket) running one command in a 100x40 window."""

    def __init__(self, tmp: Path):
        self.socket = str(tmp / "tmux.sock")

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "t")

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on screen:\n{self.screen()}")

    def type(self, text: str) -> None:
        self("send-keys", "-t", "t", "-l", text)
        self("send-keys", "-t", "t", "Enter")


def test_approval_prompt_in_a_real_terminal(repo: Path, tmp_path: Path) -> None:
    (repo / "PRD.json").write_text(json.dumps(PLAN))
    (repo / ".gitignore").write_text(".ralph/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"features": {"FEAT-A": [[{"write": "a.txt", "content": "a\n"}]]}}))
    env = {k: os.environ[k] for k in ("PATH", "HOME", "PYTHONPATH") if k in os.environ}
    command = " ".join([
        "env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), "TERM=xterm-256color", "COLUMNS=100",
        shlex.quote(sys.executable), "-c", shlex.quote("from harness.cli import main; main()"),
        "run", "--phase", "1", "--agent", "replay", "--agent-cmd", shlex.quote(str(script)), "-C", shlex.quote(str(repo)),
    ]) + "; echo RALPH-EXIT=$?; sleep 60"
    tmux = Tmux(tmp_path)
    tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "40", command)
    try:
        at_prompt = tmux.wait_for(QUESTION)
        time.sleep(1.0)  # a live panel still running would redraw within this time (4 refreshes a second)
        at_prompt = tmux.screen()
        lines = [line for line in at_prompt.splitlines() if line.strip()]
        assert lines[-1].startswith(QUESTION), at_prompt  # the question is the last thing on screen
        assert "elapsed" not in at_prompt and "doing" not in at_prompt, at_prompt  # the panel is gone
        assert at_prompt.count(QUESTION) == 1, at_prompt
        tmux.type("approve")
        tmux.wait_for("your name")
        tmux.type("Ana")
        tmux.wait_for("note")
        tmux.type("checked the files")
        final = tmux.wait_for("RALPH-EXIT=")
    finally:
        subprocess.run(["tmux", "-S", tmux.socket, "kill-server"], capture_output=True)
    assert "RALPH-EXIT=0" in final, final
    answered = [line for line in final.splitlines() if line.startswith(QUESTION)]
    assert len(answered) == 1 and answered[0].rstrip().endswith("approve"), final  # the answer is echoed
    assert any(line.rstrip().endswith("Ana") for line in final.splitlines() if "your name" in line), final
    assert "elapsed" not in final, final  # no panel left behind, no stray copies of it
    assert final.count("This run: 1 attempt(s)") == 1, final  # the summary once, in the approval panel
    assert "phase 1 approved by Ana" in final
    assert Ledger(repo).phase(1).approved
