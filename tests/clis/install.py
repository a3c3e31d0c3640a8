"""The real agent CLIs at their pinned versions, installed once into a cache outside the clone.

`~/.cache/ralph-test-clis/<package>-<version>/` (or `$RALPH_TEST_CLIS`): an npm prefix for
Claude Code and Codex, a venv for aider. A `.complete` marker is written last, so an
interrupted install is redone; an flock serialises pytest-xdist workers. The CLIs come from
the npm registry and PyPI through their ordinary clients (npm, pip).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.agents.presets import PRESETS


@dataclass(frozen=True)
class Pinned:
    preset: str
    package: str
    manager: str  # "npm" | "pip"

    @property
    def version(self) -> str:
        return PRESETS[self.preset].version


CLIS = {
    "claude": Pinned("claude", "@anthropic-ai/claude-code", "npm"),
    "codex": Pinned("codex", "@openai/codex", "npm"),
    "aider": Pinned("aider", "aider-chat", "pip"),
}


class Unreachable(RuntimeError):
    """The registry could not be reached (the only reason the tier skips)."""


def cache_root() -> Path:
    return Path(os.environ.get("RALPH_TEST_CLIS") or Path.home() / ".cache" / "ralph-test-clis")


def executable(name: str) -> Path:
    """The CLI's executable, installing it into the cache first when needed."""
    pin = CLIS[name]
    home = cache_root() / f"{pin.package.split('/')[-1]}-{pin.version}"
    exe = home / ("node_modules/.bin" if pin.manager == "npm" else "bin") / PRESETS[name].executable
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            shutil.rmtree(home, ignore_errors=True)
            _install(pin, home)
            (home / ".complete").write_text(f"{pin.package}=={pin.version}\n")
    return exe


def _install(pin: Pinned, home: Path) -> None:
    if pin.manager == "npm":
        if shutil.which("npm") is None:
            raise Unreachable("npm is not installed, so the npm registry cannot be reached")
        command = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(home), f"{pin.package}@{pin.version}"]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, capture_output=True)
        command = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", f"{pin.package}=={pin.version}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        output = (done.stdout + done.stderr)[-3000:]
        network = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "network", "Temporary failure in name",
                   "Could not find a version", "No matching distribution", "ConnectionError", "NewConnectionError")
        if any(word in output for word in network):
            raise Unreachable(f"cannot install {pin.package}=={pin.version}: the registry is unreachable:\n{output}")
        raise RuntimeError(f"installing {pin.package}=={pin.version} failed:\n{output}")
