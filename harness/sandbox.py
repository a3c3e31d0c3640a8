"""Bubblewrap confinement for commands the harness does not trust.

Inside the sandbox the whole filesystem is read-only except the repository and one scratch
directory; `/tmp` is private, `/proc` and `/dev` are fresh, and the network is cut unless the
caller asks for it (a CLI agent needs its API; tool commands and checks do not). Paths passed
as `readonly` (PRD.json, .git, ...) are re-mounted read-only on top of the writable repository,
so a write to them fails instead of being reverted afterwards.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

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


def resolve_sandbox(requested: str) -> tuple[str, str | None]:
    """The sandbox to use for `requested` ("none" or "bwrap") and a note when falling back to none."""
    if requested == "bwrap":
        problem = bwrap_problem()
        if problem is not None:
            return "none", f"--sandbox bwrap unavailable: {problem}; using --sandbox none"
    elif requested != "none":
        raise ValueError(f"unknown sandbox {requested!r}; use 'none' or 'bwrap'")
    return requested, None


def wrap(
    command: str | Sequence[str],
    repo: Path,
    scratch: Path,
    *,
    network: bool,
    writable: Sequence[Path] = (),
    readonly: Sequence[Path] = (),
) -> list[str]:
    """An argv running `command` (a shell string or argv) under bubblewrap, cwd = `repo`.

    `writable` adds directories the command may write besides the repository and `scratch`
    (e.g. a CLI agent's own state directory); `readonly` lists existing paths inside the
    repository that stay read-only. Missing paths in either list are skipped.
    """
    repo, scratch = Path(repo).resolve(), Path(scratch).resolve()
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # The private /tmp would hide a Python environment that lives under /tmp (a CI clone's .venv):
    # mount the running interpreter's prefixes back, read-only.
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        argv += ["--ro-bind", prefix, prefix]
    for path in (repo, scratch, *(Path(p).resolve() for p in writable)):
        if path.exists():
            argv += ["--bind", str(path), str(path)]
    for path in readonly:
        path = Path(path)
        if path.exists() or path.is_symlink():
            target = str(path.resolve())
            argv += ["--ro-bind", target, target]
    argv += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
    if not network:
        argv.append("--unshare-net")
    argv += ["--setenv", "TMPDIR", str(scratch), "--chdir", str(repo), "--"]
    argv += ["bash", "-c", command] if isinstance(command, str) else list(command)
    return argv
