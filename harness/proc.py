"""Run shell commands the harness does not trust: own process group, hard timeout, scrubbed env.

Used by verification checks and by agent tools alike, so both kill whole process trees at the
time limit and never hand API keys to code the agent wrote.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Names always removed; the glob patterns catch the rest (GITHUB_TOKEN, AWS_SECRET, HF_API_KEY, ...).
SECRET_NAMES = frozenset({"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "WANDB_API_KEY"})
SECRET_PATTERNS = ("*_TOKEN", "*_SECRET", "*_KEY")
KILL_GRACE_S = 2.0


def is_secret(name: str) -> bool:
    """True when an environment variable name looks like a credential."""
    upper = name.upper()
    return upper in SECRET_NAMES or any(fnmatch.fnmatchcase(upper, p) for p in SECRET_PATTERNS)


def scrubbed_env(
    allow: Iterable[str] = (), base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A copy of `base` (default: os.environ) without credentials, except names listed in `allow`."""
    allowed = set(allow)
    env = {k: v for k, v in (os.environ if base is None else base).items() if k in allowed or not is_secret(k)}
    env.update(extra or {})
    return env


@dataclass
class ProcessResult:
    """Outcome of one command: exit code (None when killed), output tail, wall time."""

    returncode: int | None
    output_tail: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def kill_group(pgid: int, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a short grace period.

    `reap` (e.g. `Popen.poll`) collects our own child, whose zombie would otherwise keep the
    group alive for the whole grace period.
    """
    for sig, pause in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline:
            if reap:
                reap()
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


def run_in_group(
    command: str | list[str],
    cwd: Path | str,
    *,
    timeout_s: float | None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    tail_bytes: int = 2048,
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ProcessResult:
    """Run `command` (a shell string, or argv) in a new session and process group.

    At the timeout, on Ctrl-C, and after the main process exits, the whole group is killed, so
    background grandchildren cannot outlive the check or hold its output pipe open. The full
    output goes to `log_path` when given; the last `tail_bytes` are returned as evidence.
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        cwd=str(cwd),
        env=dict(env) if env is not None else scrubbed_env(),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    tail: deque[bytes] = deque()
    tail_size = [0]
    log = open(log_path, "ab") if log_path else None

    def pump() -> None:
        assert proc.stdout is not None
        for chunk in iter(proc.stdout.readline, b""):
            if log:
                log.write(chunk)
                log.flush()
            tail.append(chunk)
            tail_size[0] += len(chunk)
            while tail_size[0] > tail_bytes and len(tail) > 1:
                tail_size[0] -= len(tail.popleft())
            if on_line:
                on_line(chunk.decode("utf-8", "replace").rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if stdin is not None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        kill_group(proc.pid, proc.poll)
        proc.wait()
        reader.join(timeout=5)
        if log:
            log.close()
    text = b"".join(tail).decode("utf-8", "replace")[-tail_bytes:]
    return ProcessResult(
        returncode=None if timed_out else proc.returncode,
        output_tail=text,
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
    )
