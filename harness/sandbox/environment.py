"""How ralph runs a command it does not trust: `Environment`, one of `none`, `bwrap` or `seatbelt`.

One object for the agent's tools, the command agent and the checks, so all three get the same
treatment: a scrubbed environment (no credentials unless allowed), their own session and process
group killed at the time limit, and every descendant that outlives the command killed too
(`proc.Reaper`; ralph is a child subreaper, so daemons that `setsid` or double-fork stay
findable). Under `bwrap` the command also runs in bubblewrap: the whole filesystem read-only
except the working directory and a scratch directory, `/tmp` private, `/proc` and `/dev` fresh,
its own PID namespace (everything in it dies with its first process, and with ralph:
`--die-with-parent`), and its own network namespace (`--unshare-net`: nothing but its own loopback,
and an empty /run, where the host's services keep their Unix sockets).
`network` says what gets out of it: False nothing; an `Egress` (an agent) only its model API, through
ralph's filtering proxy (network.py) and the relay started in the sandbox (relay.py); True the host's
network (the checks). Paths passed as `readonly` (PRD.json, .git, protected globs) are re-mounted
read-only on top of the writable directory, so a write to them fails instead of being reverted afterwards.
Under `seatbelt` (macOS) a Seatbelt profile
promises the same about files and network (seatbelt.py); it has no PID namespace.

`auto`, the default, is the sandbox this OS has (`resolve_sandbox`); `confine` is the one place
that picks the backend for a command.
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
from harness.sandbox import SANDBOX_KINDS, SANDBOXES, SandboxKind, relay, seatbelt
from harness.sandbox.network import PROXY_PORT, Egress, FilteringProxy, proxy_env
from harness.sandbox.proc import ProcessResult, Reaper, command_argv, run_in_group

Network = bool | Egress  # True: the host's network; False: none; Egress: only its endpoints, through the proxy

RUN_DIRS = ("/run", "/var/run")  # where services put their sockets: empty for a command without the network
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
        return (f"bubblewrap cannot create namespaces here ({reason}); unprivileged user namespaces may be disabled "
                "(enable them: sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04+ "
                "kernel.apparmor_restrict_unprivileged_userns=0; in a container, allow them in its seccomp profile)")
    return None


def bwrap_available() -> bool:
    """True when `wrap` will produce a command that runs."""
    return bwrap_problem() is None


UNSANDBOXED = ("the agent and the checks run with your rights: they can read your home and change ralph's installed "
               "code. Pass --sandbox none to choose that knowingly")


def native_sandbox() -> SandboxKind | None:
    """The sandbox this operating system has: bwrap on Linux, seatbelt on macOS, else None."""
    return {"linux": "bwrap", "darwin": "seatbelt"}.get(sys.platform)  # type: ignore[return-value]


def sandbox_problem(kind: str) -> str | None:
    """Why sandbox `kind` ("bwrap" or "seatbelt") cannot be used here, or None when it works."""
    return bwrap_problem() if kind == "bwrap" else seatbelt.seatbelt_problem()


def resolve_sandbox(requested: str) -> tuple[SandboxKind, str | None]:
    """The sandbox to use for `requested` (one of SANDBOX_KINDS) and, when it falls back to none, a warning
    saying why and how to fix it (show it on every run: the agent then has the user's rights)."""
    if requested == "none":
        return "none", None
    if requested not in SANDBOX_KINDS:
        raise ValueError(f"unknown sandbox {requested!r}; use one of: {', '.join(SANDBOX_KINDS)}")
    kind = native_sandbox() if requested == "auto" else requested
    if kind is None:
        problem = f"ralph has no sandbox for {sys.platform} (bwrap is Linux's, seatbelt macOS's)"
    else:
        problem = sandbox_problem(kind)
        if problem is None:
            return kind, None  # type: ignore[return-value]
    wanted = f"--sandbox {requested}" + (f" ({kind})" if requested == "auto" and kind else "")
    return "none", f"NO SANDBOX: {wanted} is unavailable: {problem}. Until that is fixed, {UNSANDBOXED}."


def toolchains(repo: Path) -> list[Path]:
    """The Python installations whose code ralph or the checks run: this interpreter's prefixes, the
    activated virtual environment, and every virtual environment at the repository's top level (a
    directory holding `pyvenv.cfg`), and ralph's own source tree when it is installed editable (`pip install
    -e`: its packages are imported from there, so a sandbox that hid it, under a private /tmp, would break
    them). None of them is the agent's to change."""
    found = [Path(p) for p in (sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV")) if p]
    found += [d for d in Path(repo).iterdir() if d.is_dir() and not d.is_symlink() and is_virtualenv(d)]
    source = Path(__file__).resolve().parents[2]  # harness/sandbox/environment.py -> the tree holding harness/
    here = Path(repo).resolve()
    if not any(part in ("site-packages", "dist-packages") for part in source.parts) and \
            not (source.is_relative_to(here) or here.is_relative_to(source)):  # ralph's own repository: its work
        found.append(source)
    return [p.resolve() for p in dict.fromkeys(found) if p.exists()]


def _covers(path: Path, bound: Sequence[Path]) -> bool:
    """True when a read-only mount of `path` would cover one of the writable `bound` paths."""
    return any(w.is_relative_to(path) for w in bound)


def wrap(
    command: str | Sequence[str],
    repo: Path,
    scratch: Path,
    *,
    network: bool,
    writable: Sequence[Path] = (),
    readonly: Sequence[Path] = (),
    home: Path | None = None,
    proxy: Path | None = None,
    hidden: Sequence[Path] = (),
) -> list[str]:
    """An argv running `command` (a shell string or argv) under bubblewrap, cwd = `repo`.

    `writable` adds directories the command may write besides `repo` and `scratch` (a CLI
    agent's state directory, say); `readonly` lists existing paths that stay read-only (inside
    `repo`, or an install tree that must stay visible under the private /tmp). Missing paths in
    either list are skipped. With `home` (a directory under `scratch`, say), the user's home and
    per-user runtime directory are empty and HOME is `home`: nothing the user can read there (keys,
    cloud credentials, other tools' configuration) is visible, and nothing written there outlives the
    command, unless a mount above binds it back. With `proxy` (the Unix socket of a `FilteringProxy`, and
    `network` False), its directory is bound read-only and `relay.py` forwards 127.0.0.1:PROXY_PORT to it
    before the command starts.
    `hidden` paths that exist are covered last, after every bind:
    a directory by an empty read-only tmpfs, a file by /dev/null.
    """
    assert proxy is None or not network, "a proxied command runs in its own network namespace"
    repo, scratch = Path(repo).resolve(), Path(scratch).resolve()
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    if not network:
        # A read-only mount does not stop connect(): the host's Unix sockets (Docker's, the system bus, a
        # database's) are network endpoints too, and most live under /run.
        argv += [arg for run in RUN_DIRS if Path(run).is_dir() and not Path(run).is_symlink()
                 for arg in ("--tmpfs", run)]
    if home is not None:
        for private in (Path.home(), os.environ.get("XDG_RUNTIME_DIR")):
            if private and Path(private).is_dir():
                argv += ["--tmpfs", str(Path(private).resolve())]
        argv += ["--setenv", "HOME", str(Path(home).resolve())]
    bound = [p for p in (repo, scratch, *(Path(p).expanduser().resolve() for p in writable)) if p.exists()]
    for path in bound:
        argv += ["--bind", str(path), str(path)]
    # After the writable binds, which would otherwise cover them: the interpreters and virtual
    # environments that ralph and the checks run, read-only wherever they live (the private /tmp
    # would also hide one under /tmp, a CI clone's .venv; a repository's own .venv is under `repo`).
    # A toolchain holding a writable path (ralph's own source tree, holding the run outputs of ralph's
    # own repository) would cover it: its parts that are toolchains are bound on their own.
    for path in toolchains(repo):
        if not _covers(path, bound):
            argv += ["--ro-bind", str(path), str(path)]
    for path in readonly:
        path = Path(path)
        if path.exists() or path.is_symlink():
            target = str(path.resolve())
            argv += ["--ro-bind", target, target]
    if proxy is not None:
        argv += ["--ro-bind", str(proxy.parent), str(proxy.parent)]
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
    tmpdir = scratch / "tmp"  # below the scratch directory, so state kept beside it is not in the TMPDIR a CLI sees
    tmpdir.mkdir(exist_ok=True)
    argv += ["--setenv", "TMPDIR", str(tmpdir), "--chdir", str(repo), "--"]
    if proxy is not None:
        argv += [sys.executable, "-I", "-S", "-c", relay_source(), str(proxy), str(PROXY_PORT)]
    return argv + command_argv(command)


@functools.cache
def relay_source() -> str:
    """relay.py's text, run with `python -c`: ralph's own source tree need not be visible in the sandbox."""
    return Path(relay.__file__).read_text()


def private_tmp(command: str | Sequence[str], cwd: Path, scratch: Path, *, writable: Sequence[Path] = (),
                readonly: Sequence[Path] = ()) -> list[str]:
    """An argv running `command` in a mount namespace of its own whose temporary directory is empty but for
    what ralph binds back: `cwd` (a check's checkout), `scratch` (its TMPDIR) and `writable`, read-write, and
    the toolchains and `readonly` read-only. Everything else is the host's, as without a sandbox.

    What checks run for: a test runner looks for its configuration in the checkout's ancestors (pytest reads a
    `pytest.ini` or `conftest.py` it finds above the checkout), and those ancestors are in the world-writable
    temporary directory, where an unsandboxed agent could leave one. Here they hold nothing ralph did not put
    there, whatever sandbox the agent ran under.
    """
    tmp = Path(tempfile.gettempdir()).resolve()
    argv = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", str(tmp)]
    for path in (*(Path(p).resolve() for p in writable), Path(cwd).resolve(), Path(scratch).resolve()):
        if path.is_relative_to(tmp) and path.exists():
            argv += ["--bind", str(path), str(path)]
    bound = [Path(p).resolve() for p in (*writable, cwd, scratch)]
    for path in [*toolchains(Path(cwd)), *(Path(p).resolve() for p in readonly)]:
        if path.is_relative_to(tmp) and path.exists() and not _covers(path, bound):
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--die-with-parent", "--setenv", "TMPDIR", str(Path(scratch).resolve()), "--chdir", str(Path(cwd).resolve()),
             "--"]
    return argv + command_argv(command)


def confine(
    kind: str,
    command: str | Sequence[str],
    repo: Path,
    scratch: Path,
    *,
    network: bool,
    writable: Sequence[Path] = (),
    readonly: Sequence[Path] = (),
    home: Path | None = None,
    proxy: Path | None = None,
    hidden: Sequence[Path] = (),
) -> list[str]:
    """An argv running `command` in sandbox `kind`, cwd = `repo`: bubblewrap (`wrap`) or Seatbelt
    (`seatbelt.wrap`, with the toolchains read-only as `wrap` keeps them). The one place that picks the
    backend, so callers do not care which OS they are on. `proxy` (the filtering proxy's socket) is bwrap's
    only: under Seatbelt an agent keeps the network (docs/judge.md)."""
    if kind == "bwrap":
        return wrap(command, repo, scratch, network=network, writable=writable, readonly=readonly, home=home,
                    proxy=proxy, hidden=hidden)
    if kind == "seatbelt":
        if hidden:  # an optimize holdout: the profile cannot hide it yet, and a holdout that shows is no holdout
            raise ValueError("hiding paths (an optimize holdout) is not supported under seatbelt; use bwrap (Linux)")
        return seatbelt.wrap(command, repo, scratch, network=network, writable=writable,
                             readonly=[*toolchains(Path(repo)), *readonly], home=home)
    raise ValueError(f"{kind!r} confines nothing; a sandbox is one of: {', '.join(SANDBOXES)}")


class Environment:
    """Where and how an untrusted command runs: `kind` is "none", "bwrap" or "seatbelt".

    `requested` may be "auto"; a sandbox that cannot work here falls back to none, and `note` says
    why (show it).
    """

    def __init__(self, requested: str = "none") -> None:
        self.kind, self.note = resolve_sandbox(requested)

    @property
    def sandboxed(self) -> bool:
        return self.kind in SANDBOXES

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
        proxy: Path | None = None,
        hidden: Sequence[Path] = (),
    ) -> list[str]:
        """What actually runs for `command`: itself (none), or its sandboxed form (`confine`)."""
        if not self.sandboxed:
            return command_argv(command)
        assert scratch is not None, "a sandboxed command needs a scratch directory"
        return confine(self.kind, command, cwd, scratch, network=network, readonly=readonly, writable=writable,
                       home=home, proxy=proxy, hidden=hidden)

    def run(
        self,
        command: str | Sequence[str],
        cwd: Path,
        *,
        timeout_s: float | None,
        env: Mapping[str, str],
        network: Network = False,
        readonly: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        scratch: Path | None = None,
        stdin: str | None = None,
        tail_bytes: int = 2048,
        log_path: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        private_home: bool = False,
        own_tmp: bool = False,
        hidden: Sequence[Path] = (),
    ) -> ProcessResult:
        """Run `command` in `cwd`; when it returns, nothing it started is still running.

        In a sandbox `scratch` is the writable TMPDIR (a fresh one per command when None); with
        `private_home` HOME is `scratch/home` and the user's home is empty (what an agent runs). With an
        `Egress` as `network`, the command reaches only its endpoints, through a `FilteringProxy` that lives
        as long as the command; what the proxy refused is appended to `log_path`. Without bwrap an `Egress`
        cannot be enforced: the command has the host's network. `own_tmp` (what checks ask for): without a
        sandbox, the command still gets a temporary directory of its own (`private_tmp`) where bubblewrap
        works; under bwrap it always has one. `hidden`: see `wrap` (nothing hides them under none or
        seatbelt).
        """
        with ExitStack() as stack:
            namespace = own_tmp and not self.sandboxed and bwrap_available()
            if (self.sandboxed or namespace) and scratch is None:
                scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ralph-scratch-")))
            proxy = None
            if isinstance(network, Egress):
                if self.kind == "bwrap" and network.allowed:
                    proxy = stack.enter_context(FilteringProxy(network))
                    env = proxy_env(env)
                # Only bwrap gives a command a network namespace with one way out; elsewhere an Egress with
                # endpoints cannot be enforced (the host's network), and one without them is no network.
                network = bool(network.allowed) and self.kind != "bwrap"
            stack.enter_context(Reaper())
            home = None
            if self.sandboxed and private_home:
                home = Path(scratch) / "home"
                home.mkdir(exist_ok=True)
            if namespace:
                argv = private_tmp(command, cwd, Path(scratch), writable=writable, readonly=readonly)
            else:
                argv = self.argv(command, cwd, scratch, network=network, readonly=readonly, writable=writable,
                                 home=home, proxy=proxy.socket_path if proxy else None, hidden=hidden)
            done = run_in_group(argv, cwd, timeout_s=timeout_s, env=env, stdin=stdin, tail_bytes=tail_bytes,
                                log_path=log_path, on_line=on_line)
            if proxy is not None and log_path is not None and proxy.refused_count:
                with open(log_path, "a") as log:
                    log.writelines(f"ralph: {line}\n" for line in proxy.report())
            return done


def safe_path(path: str) -> str:
    """PATH without empty, `.` or relative entries (each would let the working directory shadow a tool)."""
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and os.path.isabs(p))
