"""Run shell commands the harness does not trust: own process group, hard timeout, scrubbed env,
and nothing left behind.

Used by verification checks and by agent tools alike, so both kill whole process trees at the
time limit and never hand API keys to code the agent wrote. A process group is not enough: a
command can `setsid` or double-fork out of it. So ralph makes itself a child subreaper (Linux),
which makes every orphan of a command its child, and `Reaper` kills every descendant that was
not there before the command started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from harness.fileio import printable
from harness.secrets import is_secret

KILL_GRACE_S = 2.0
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
READ_CHUNK = 1 << 16  # bytes per read of a command's output
LINE_MAX = 8_192  # bytes of one output line handed to `on_line`; the rest is counted, not kept
LOG_MAX = 16 << 20  # bytes of output kept in `log_path`: its head, a "bytes cut" note, its last LOG_TAIL
LOG_TAIL = 4 << 20


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


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where unsupported.

    After this, a daemon that a command double-forks or `setsid`s stays a descendant of ralph,
    so `Reaper` finds it. Idempotent.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# Hand-written /proc walk: psutil would do it, but it is one more compiled dependency for two
# small functions, and the harness's light core should install without a compiler.
def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state letter, process group) of `pid` from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()  # the command name may contain spaces and ')'
    return int(fields[1]), fields[0].decode(), int(fields[2])


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def descendants(root: int | None = None) -> set[int]:
    """Every live or zombie descendant of `root` (default: this process), found through /proc."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        info = _stat(pid)
        if info is not None:
            children.setdefault(info[0], []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def reap_group_orphans(pgid: int, exclude: int) -> None:
    """Collect the zombies of group `pgid` that were orphaned onto this process (a subreaper).

    Only members of that group: another zombie child may belong to a `Popen` that still waits for it.
    """
    for pid in _all_pids():
        info = _stat(pid)
        if pid != exclude and info is not None and info[0] == os.getpid() and info[1] == "Z" and info[2] == pgid:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def processes_with_env(name: str, value: str) -> set[int]:
    """Processes (other than this one) whose initial environment has `name=value`."""
    needle = f"{name}={value}".encode()
    found = set()
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.add(pid)
        except OSError:
            continue
    return found


def kill_processes(pids: set[int]) -> None:
    """Stop, then kill, `pids`; reap those that are this process's children.

    SIGSTOP first, so none of them can fork a replacement while the others are being killed.
    """
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # not our child: its own parent (also killed) or init reaps it
            pass


class Reaper:
    """`with Reaper():` — on exit, kill every descendant of ralph that appeared inside the block.

    Descendants present at entry (GitPython's persistent `git cat-file` helpers, say) are left
    alone; everything a command started, including daemons that left its process group, is
    killed. Walks repeat until no new descendant shows up (a fork racing the kill).
    """

    def __init__(self) -> None:
        become_subreaper()
        self.keep: set[int] = set()

    def __enter__(self) -> Reaper:
        self.keep = descendants()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reap()

    def reap(self) -> set[int]:
        killed: set[int] = set()
        for _ in range(20):
            strays = descendants() - self.keep - killed
            if not strays:
                break
            kill_processes(strays)
            killed |= strays
        for pid in killed:  # orphans whose parent was killed first are our zombies by now
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        return killed


class OutputPump:
    """Consumes a command's output in chunks with bounded memory, whatever the command prints.

    Keeps the last `tail_bytes` for evidence; hands complete lines to `on_line`, each cut to
    `LINE_MAX` bytes with a note; writes `log` up to `LOG_MAX` bytes (head, then a note of how
    much was cut, then the last `LOG_TAIL` bytes, so the end of a flood is still in the log).
    Hand-written because the stdlib's line readers buffer a whole line, however long.
    """

    def __init__(self, tail_bytes: int, log: BinaryIO | None, on_line: Callable[[str], None] | None):
        self.tail_bytes, self.log, self.on_line = tail_bytes, log, on_line
        self.tail = bytearray()
        self.line, self.line_cut = bytearray(), 0
        self.logged, self.log_tail, self.log_cut = 0, bytearray(), 0
        self.closed = False
        self.on_line_failed: str | None = None  # why `on_line` last failed; the output was kept regardless
        self.lock = threading.Lock()  # a reader thread that outlives its join must not write after close

    def feed(self, data: bytes) -> None:
        with self.lock:
            if not self.closed:
                self._feed(data)

    def _feed(self, data: bytes) -> None:
        self.tail += data
        del self.tail[: max(0, len(self.tail) - self.tail_bytes)]
        if self.log is not None:
            self._log(data)
        if self.on_line is not None:
            *complete, rest = data.split(b"\n")
            for piece in complete:
                self._add_to_line(piece)
                self._emit()
            self._add_to_line(rest)

    def _log(self, data: bytes) -> None:
        assert self.log is not None
        room = max(0, LOG_MAX - LOG_TAIL - self.logged)
        if room:
            self.log.write(data[:room])
            self.log.flush()
            self.logged += min(room, len(data))
        if len(data) > room:
            self.log_tail += data[room:]
            excess = len(self.log_tail) - LOG_TAIL
            if excess > 0:
                del self.log_tail[:excess]
                self.log_cut += excess

    def _add_to_line(self, piece: bytes) -> None:
        room = max(0, LINE_MAX - len(self.line))
        self.line += piece[:room]
        self.line_cut += max(0, len(piece) - room)

    def _emit(self) -> None:
        assert self.on_line is not None
        text = printable(self.line.decode("utf-8", "replace"))
        if self.line_cut:
            text += f" … {self.line_cut} bytes cut"
        self.line, self.line_cut = bytearray(), 0
        try:
            self.on_line(text)
        except Exception as e:  # a display that fails on this line must not stop the draining (the command
            # would block on a full pipe until its timeout): the line is still in the tail and the log
            self.on_line_failed = f"{type(e).__name__}: {e}"

    def close(self) -> str:
        """Flush the last partial line and the log's tail; returns the output tail as text."""
        with self.lock:
            self.closed = True
            return self._close()

    def _close(self) -> str:
        if self.on_line is not None and (self.line or self.line_cut):
            self._emit()
        if self.log is not None and self.log_tail:
            if self.log_cut:
                self.log.write(f"\n[… {self.log_cut} bytes cut: ralph keeps the first and last part of "
                               f"long output]\n".encode())
            self.log.write(bytes(self.log_tail))
            self.log.flush()
        return printable(bytes(self.tail).decode("utf-8", "replace")[-self.tail_bytes :])


def command_argv(command: str | Sequence[str]) -> list[str]:
    """`command` as an argv: a shell string runs in bash, an argv as it is."""
    return ["bash", "-c", command] if isinstance(command, str) else list(command)


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
    background grandchildren cannot outlive the check or hold its output pipe open. The output goes
    to `log_path` when given (capped, see `OutputPump`); the last `tail_bytes` are returned as evidence.
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
    log = open(log_path, "ab") if log_path else None
    output = OutputPump(tail_bytes, log, on_line)

    def pump() -> None:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(READ_CHUNK), b""):  # type: ignore[union-attr]
            output.feed(chunk)

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
        kill_group(proc.pid, lambda: (proc.poll(), reap_group_orphans(proc.pid, exclude=proc.pid)))
        proc.wait()
        reader.join(timeout=5)
        text = output.close()
        if log:
            log.close()
    return ProcessResult(
        returncode=None if timed_out else proc.returncode,
        output_tail=text,
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
    )
