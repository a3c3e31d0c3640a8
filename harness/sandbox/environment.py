"""How ralph runs a command it does not trust: `Environment`, either `none` or `bwrap`.

One object for the agent's tools, the command agent and the checks, so all three get the same
treatment: a scrubbed environment (no credentials unless allowed), their own session and process
group killed at the time limit, and every descendant that outlives the command killed too
(`proc.Reaper`; ralph is a child subreaper, so daemons that `setsid` or double-fork stay
findable). Under `bwrap` the command also runs in bubblewrap: the whole filesystem read-only
except the working directory and a scratch directory, `/tmp` private, `/proc` and `/dev` fresh,
its own PID namespace (everything in it dies with its first process, and with ralph:
`--die-with-parent`), and no network unless asked for. Paths passed as `readonly` (PRD.json,
.git, protected globs) are re-mounted read-only on top of the writable directory, so a write to
them fails instead of being reverted afterwards.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from harness.books.layout import RALPH_DIR
from harness.fileio import is_virtualenv
from harness.sandbox import SandboxKind
from harness.sandbox.proc import ProcessResult, Reaper, run_in_group

INSTALL_HINT = "install it with `apt-get install -y bubblewrap` (or run `make setup`)"


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot be used here, or None when it works (checked once per process)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    probe = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--unshare-net", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap failed to start: {exc}"
    if done.returncode != 0:
        reason = done.stderr.strip() or f"exit code {done.returncode}"
        return f"bubblewrap cannot create namespaces here ({reason}); unprivileged user namespaces may be disabled"
    return None


def bwrap_available() -> bool:
    """True when `wrap` will produce a command that runs."""
    return bwrap_problem() is None


def resolve_sandbox(requested: str) -> tuple[SandboxKind, str | None]:
    """The sandbox to use for `requested` ("none" or "bwrap") and a note when falling back to none."""
    if requested == "bwrap":
        problem = bwrap_problem()
        if problem is not None:
            return "none", f"--sandbox bwrap unavailable: {problem}; using --sandbox none"
        return "bwrap", None
    if requested != "none":
        raise ValueError(f"unknown sandbox {requested!r}; use 'none' or 'bwrap'")
    return "none", None


def toolchains(repo: Path) -> list[Path]:
    """The Python installations whose code ralph or the checks run: this interpreter's prefixes, the
    activated virtual environment, and every virtual environment at the repository's top level (a
    directory holding `pyvenv.cfg`). None of them is the agent's to change."""
    found = [Path(p) for p in (sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV")) if p]
    found += [d for d in Path(repo).iterdir() if d.is_dir() and not d.is_symlink() and is_virtualenv(d)]
    return [p.resolve() for p in dict.fromkeys(found) if p.exists()]


def wrap(
    command: str | Sequence[str],
    repo: Path,
    scratch: Path,
    *,
    network: bool,
    writable: Sequence[Path] = (),
    readonly: Sequence[Path] = (),
    home: Path | None = None,
    hidden: Sequence[Path] = (),
) -> list[str]:
    """An argv running `command` (a shell string or argv) under bubblewrap, cwd = `repo`.

    `writable` adds directories the command may write besides `repo` and `scratch` (a CLI
    agent's state directory, say); `readonly` lists existing paths that stay read-only (inside
    `repo`, or an install tree that must stay visible under the private /tmp). Missing paths in
    either list are skipped. With `home` (a directory under `scratch`, say), the user's home and
    per-user runtime directory are empty and HOME is `home`: nothing the user can read there (keys,
    cloud credentials, other tools' configuration) is visible, and nothing written there outlives the
    command, unless a mount above binds it back. `hidden` paths that exist are covered last, after every bind:
    a directory by an empty read-only tmpfs, a file by /dev/null.
    """
    repo, scratch = Path(repo).resolve(), Path(scratch).resolve()
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    if home is not None:
        for private in (Path.home(), os.environ.get("XDG_RUNTIME_DIR")):
            if private and Path(private).is_dir():
                argv += ["--tmpfs", str(Path(private).resolve())]
        argv += ["--setenv", "HOME", str(Path(home).resolve())]
    for path in (repo, scratch, *(Path(p).expanduser().resolve() for p in writable)):
        if path.exists():
            argv += ["--bind", str(path), str(path)]
    # After the writable binds, which would otherwise cover them: the interpreters and virtual
    # environments that ralph and the checks run, read-only wherever they live (the private /tmp
    # would also hide one under /tmp, a CI clone's .venv; a repository's own .venv is under `repo`).
    for path in toolchains(repo):
        argv += ["--ro-bind", str(path), str(path)]
    for path in readonly:
        path = Path(path)
        if path.exists() or path.is_symlink():
            target = str(path.resolve())
            argv += ["--ro-bind", target, target]
    if (repo / RALPH_DIR).is_dir():  # ralph's records (job ids, result nonces, the attempt in flight): hidden
        argv += ["--tmpfs", str(repo / RALPH_DIR), "--remount-ro", str(repo / RALPH_DIR)]
    for path in hidden:
        path = Path(path)
        if path.is_dir():
            argv += ["--tmpfs", str(path.resolve()), "--remount-ro", str(path.resolve())]
        elif path.exists():
            argv += ["--ro-bind", "/dev/null", str(path.resolve())]
    argv += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
    if not network:
        argv.append("--unshare-net")
    argv += ["--setenv", "TMPDIR", str(scratch), "--chdir", str(repo), "--"]
    argv += ["bash", "-c", command] if isinstance(command, str) else list(command)
    return argv


class Environment:
    """Where and how an untrusted command runs: `kind` is "none" or "bwrap".

    A requested bwrap that cannot work here falls back to none; `note` says why (show it).
    """

    def __init__(self, requested: str = "none") -> None:
        self.kind, self.note = resolve_sandbox(requested)

    @property
    def sandboxed(self) -> bool:
        return self.kind == "bwrap"

    def argv(
        self,
        command: str | Sequence[str],
        cwd: Path,
        scratch: Path | None,
        *,
        network: bool,
        readonly: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        home: Path | None = None,
        hidden: Sequence[Path] = (),
    ) -> list[str]:
        """What actually runs for `command`: itself (none), or its bubblewrap wrapping (`wrap`)."""
        if not self.sandboxed:
            return ["bash", "-c", command] if isinstance(command, str) else list(command)
        assert scratch is not None, "a sandboxed command needs a scratch directory"
        return wrap(command, cwd, scratch, network=network, readonly=readonly, writable=writable, home=home,
                    hidden=hidden)

    def run(
        self,
        command: str | Sequence[str],
        cwd: Path,
        *,
        timeout_s: float | None,
        env: Mapping[str, str],
        network: bool = False,
        readonly: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        scratch: Path | None = None,
        stdin: str | None = None,
        tail_bytes: int = 2048,
        log_path: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        private_home: bool = False,
        hidden: Sequence[Path] = (),
    ) -> ProcessResult:
        """Run `command` in `cwd`; when it returns, nothing it started is still running.

        Under bwrap `scratch` is the writable TMPDIR (a fresh one per command when None); with
        `private_home` HOME is `scratch/home` and the user's home is empty (what an agent runs); `hidden`:
        see `wrap` (nothing hides them under none).
        """
        with ExitStack() as stack:
            if self.sandboxed and scratch is None:
                scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ralph-scratch-")))
            stack.enter_context(Reaper())
            home = None
            if self.sandboxed and private_home:
                home = Path(scratch) / "home"
                home.mkdir(exist_ok=True)
            argv = self.argv(command, cwd, scratch, network=network, readonly=readonly, writable=writable, home=home,
                             hidden=hidden)
            return run_in_group(argv, cwd, timeout_s=timeout_s, env=env, stdin=stdin, tail_bytes=tail_bytes,
                                log_path=log_path, on_line=on_line)


def safe_path(path: str) -> str:
    """PATH without empty, `.` or relative entries (each would let the working directory shadow a tool)."""
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and os.path.isabs(p))
