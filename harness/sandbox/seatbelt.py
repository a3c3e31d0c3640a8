"""The macOS backend (`--sandbox seatbelt`): a Seatbelt profile for `sandbox-exec`, built from the
same inputs as bubblewrap's `environment.wrap`, promising the same things where macOS can.

UNTESTED ON A MAC. No macOS machine runs this project's tests: the profile's generation is
unit-tested (tests/harness/test_sandbox_seatbelt.py reads the SBPL back and evaluates it), but
`sandbox-exec` itself has never run it. docs/judge.md says what is promised and what is not.

The profile (SBPL, the Scheme-like language of Apple's sandbox) denies everything, then allows only:

- reading the whole filesystem except the hidden places: the user's home and per-user runtime
  directory (when the command gets a private `home`), every temporary directory (`/tmp` is private,
  as under bwrap: TMPDIR is the scratch directory) and the repository's `.ralph/`; inside a hidden
  place, what the command needs is bound back (the repository, scratch, writable and read-only paths);
- writing the repository, scratch and `writable` directories, minus the read-only paths (the
  toolchains, PRD.json, .git, protected globs) and `.ralph/`, and minus renaming the directories above
  them (which would move a read-only path out from under its rule);
- the network only when asked: with `proxy_port`, nothing but that loopback port (the filtering proxy);
- processes: starting programs, signalling and inspecting only those in the same sandbox, and reading
  the machine's kernel values but not other processes' (under bwrap the PID namespace does that).

Every rule is an `allow` after `(deny default)`, and each exclusion sits inside its rule
(`require-not`), so no rule depends on Seatbelt's rule order, which Apple does not document.
Paths reach the profile as parameters (`sandbox-exec -D NAME=VALUE`, read with `(param "NAME")`),
never as text in it, so a directory name cannot add a rule. Seatbelt matches real paths (macOS's
/tmp is /private/tmp), so every path is resolved first.

Written by hand: no Python library generates Seatbelt profiles. `@anthropic-ai/sandbox-runtime`
(npm) does, but it is a Node program with its own configuration and proxy (docs/judge.md weighs it).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.books.layout import RALPH_DIR
from harness.sandbox.proc import command_argv

SANDBOX_EXEC = "/usr/bin/sandbox-exec"  # by its absolute path: PATH is not trusted to find the sandbox
ENV = "/usr/bin/env"  # sets HOME and TMPDIR inside the sandbox (sandbox-exec has no --setenv)
INSTALL_HINT = ("Seatbelt is macOS's own sandbox (/usr/bin/sandbox-exec, part of the system); it cannot be "
                "installed elsewhere")
# Temporary directories every process may otherwise share: hidden, as bwrap's private /tmp hides them.
SHARED_TMP = ("/tmp", "/private/tmp", "/var/tmp", "/private/var/tmp")
# Devices a shell writes to by name (`> /dev/null`); what a command inherits (its pipes) needs no rule.
DEVICES = ("/dev/null", "/dev/zero", "/dev/tty", "/dev/dtracehelper")
# System services reached by name (mach-lookup), each one because a common tool fails without it:
# user and group names (getpwuid), the per-user temporary directory (confstr), logging.
MACH_SERVICES = ("com.apple.system.opendirectoryd.libinfo", "com.apple.system.opendirectoryd.membership",
                 "com.apple.bsd.dirhelper", "com.apple.system.logger", "com.apple.logd",
                 "com.apple.system.notification_center")
# With the network: name resolution (mDNSResponder) and TLS certificate checks (trustd), which a CLI
# reaching its model API needs. Not securityd (com.apple.SecurityServer): it also serves the keychain.
NETWORK_SERVICES = ("com.apple.dnssd.service", "com.apple.trustd", "com.apple.trustd.agent")
MDNS_SOCKET = "/private/var/run/mDNSResponder"
# Kernel values a command may read: the machine (CPU count, memory, page size, OS version), which Python,
# PyTorch and Node ask for. Not the rest: `kern.procargs2` hands out another process's arguments *and
# environment*, ralph's API keys included, and `kern.proc.all` lists every process.
SYSCTL_PREFIXES = ("hw.", "machdep.cpu.", "kern.os", "kern.proc.pid.")
SYSCTL_NAMES = ("kern.version", "kern.hostname", "kern.argmax", "kern.maxfiles", "kern.maxfilesperproc",
                "kern.maxproc", "kern.ngroups", "kern.usrstack64", "kern.secure_kernel", "kern.tcsm_available",
                "kern.tcsm_enable", "machdep.ptrauth_enabled", "security.mac.lockdown_mode_state",
                "sysctl.proc_cputype", "vm.loadavg")
EVERYWHERE = '(subpath "/")'


@functools.cache
def seatbelt_problem() -> str | None:
    """Why Seatbelt cannot be used here, or None when it works (checked once per process)."""
    if sys.platform != "darwin":
        return f"Seatbelt (sandbox-exec) exists only on macOS, and this is {sys.platform}"
    if not os.access(SANDBOX_EXEC, os.X_OK):
        return f"{SANDBOX_EXEC} is missing; {INSTALL_HINT}"
    probe = [SANDBOX_EXEC, "-p", "(version 1)(allow default)", "/usr/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sandbox-exec failed to start: {exc}"
    if done.returncode != 0:
        reason = done.stderr.strip() or f"exit code {done.returncode}"
        return f"sandbox-exec cannot apply a profile here ({reason}); is ralph itself already inside a sandbox?"
    return None


@dataclass
class Profile:
    """An SBPL profile and the parameters it reads (`sandbox-exec -D NAME=VALUE` for each)."""

    lines: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)

    def param(self, prefix: str, path: Path | str) -> str:
        """`(param "PREFIX_n")` standing for `path` (one name per distinct path and prefix)."""
        value = str(path)
        mine = [name for name in self.params if name.rpartition("_")[0] == prefix]
        name = next((n for n in mine if self.params[n] == value), f"{prefix}_{len(mine)}")
        self.params[name] = value
        return f'(param "{name}")'

    def subpaths(self, prefix: str, paths: Iterable[Path]) -> list[str]:
        return [f"(subpath {self.param(prefix, p)})" for p in paths]

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _any(filters: list[str]) -> str:
    return filters[0] if len(filters) == 1 else f"(require-any {' '.join(filters)})"


def _but_not(filter_: str, excluded: list[str]) -> str:
    """`filter_` minus everything `excluded` matches."""
    if not excluded:
        return filter_
    return f"(require-all {filter_} {' '.join(f'(require-not {e})' for e in excluded)})"


def _strings(kind: str, values: Iterable[str]) -> str:
    return " ".join(f'({kind} "{v}")' for v in values)  # constants of this module only, never a path


def _within(path: Path, roots: Iterable[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _existing(paths: Iterable[Path | str]) -> list[Path]:
    """Each existing path (or link), resolved, once; Seatbelt sees real paths only."""
    found = [Path(p).expanduser() for p in paths]
    return list(dict.fromkeys(p.resolve() for p in found if p.exists() or p.is_symlink()))


def hidden_places(home: bool) -> list[Path]:
    """What a sandboxed command cannot see: every shared temporary directory (its TMPDIR is its scratch),
    and with a private `home` the user's home and per-user runtime directory."""
    places = [*SHARED_TMP, tempfile.gettempdir()]
    if home:
        places += [Path.home(), os.environ.get("XDG_RUNTIME_DIR") or ""]
    return [p for p in _existing(p for p in places if p) if p != Path("/")]


def profile(
    repo: Path,
    scratch: Path,
    *,
    network: bool,
    writable: Sequence[Path] = (),
    readonly: Sequence[Path] = (),
    home: Path | None = None,
    proxy_port: int | None = None,
) -> Profile:
    """The Seatbelt profile for a command in `repo` (see the module's docstring for what it allows).

    The inputs are `environment.wrap`'s, with `readonly` holding the toolchains too. `home`, when
    given, hides the user's home (the command's HOME is set by `wrap`). `proxy_port`: the only network
    is TCP to that port on loopback (the filtering proxy), whatever `network` says; without it,
    `network` is the host's network or none.
    """
    repo, scratch = Path(repo).resolve(), Path(scratch).resolve()
    ralph = repo / RALPH_DIR
    write_roots = _existing([repo, scratch, *writable])
    kept_readonly = _existing(readonly)
    hidden = hidden_places(home is not None)
    bound = [p for p in dict.fromkeys([*write_roots, *kept_readonly]) if _within(p, hidden)]

    p = Profile()
    p.lines += [
        "(version 1)",
        "(deny default)",
        "; processes: start programs; signal and inspect only those in this sandbox",
        "(allow process-exec)",
        "(allow process-fork)",
        "(allow signal (target same-sandbox))",
        "(allow process-info* (target same-sandbox))",
        "; kernel values: the machine's, never another process's arguments or environment",
        f"(allow sysctl-read {_strings('sysctl-name-prefix', SYSCTL_PREFIXES)}"
        f" {_strings('sysctl-name', SYSCTL_NAMES)})",
        "(allow user-preference-read)",
        "; shared memory and semaphores: multiprocessing and PyTorch's DataLoader workers",
        "(allow ipc-posix-shm)",
        "(allow ipc-posix-sem)",
        f"(allow mach-lookup {_strings('global-name', MACH_SERVICES)})",
        "; unnamed local sockets (socketpair); connecting to a named one needs a network rule below",
        "(allow system-socket (socket-domain AF_UNIX))",
        f"(allow file-ioctl {_strings('literal', DEVICES)})",
        f"(allow file-write-data {_strings('literal', DEVICES)} (subpath \"/dev/fd\"))",  # /dev/stdout is /dev/fd/1
    ]
    private = p.subpaths("HIDDEN", hidden) + ([f"(subpath {p.param('RALPH', ralph)})"])
    p.lines += ["; read: everything but the hidden places and ralph's records",
                f"(allow file-read* {_but_not(EVERYWHERE, private)})"]
    if bound:
        p.lines += ["; read: what the command needs inside a hidden place",
                    f"(allow file-read* {_but_not(_any(p.subpaths('BOUND', bound)), private[-1:])})"]
        # realpath() and getcwd() stat every directory on the way to a bound path
        on_the_way = [a for b in bound for a in b.parents if _within(a, hidden)]
        if on_the_way:
            literals = [f"(literal {p.param('ON_THE_WAY', a)})" for a in dict.fromkeys(on_the_way)]
            p.lines.append(f"(allow file-read-metadata {_any(literals)})")
    # A rule names paths, not files: renaming a directory above a read-only path would move that path out
    # from under its rule (bwrap's mounts refuse such a rename). So the directories on the way to one are
    # not the command's to rename, remove or chmod; what lies in them stays writable.
    above_readonly = [a for r in [*kept_readonly, ralph] for a in r.parents if _within(a, write_roots)]
    keep = (p.subpaths("READONLY", kept_readonly) + private[-1:]
            + [f"(literal {p.param('ABOVE_READONLY', a)})" for a in dict.fromkeys(above_readonly)])
    p.lines += ["; write: the repository, scratch and writable directories, minus the read-only paths and .ralph",
                f"(allow file-write* {_but_not(_any(p.subpaths('WRITABLE', write_roots)), keep)})"]
    p.lines.append("; network")
    if proxy_port is not None:
        if not 0 < int(proxy_port) < 65536:
            raise ValueError(f"proxy_port {proxy_port} is not a TCP port (1-65535)")
        p.lines.append(f'(allow network-outbound (remote ip "localhost:{int(proxy_port)}"))')
    elif network:
        p.lines += [
            '(allow network-outbound (remote ip "*:*"))',
            '(allow network-bind (local ip "*:*"))',
            '(allow network-inbound (local ip "*:*"))',
            f'(allow network-outbound (remote unix-socket (subpath "{MDNS_SOCKET}")))',
            f"(allow mach-lookup {_strings('global-name', NETWORK_SERVICES)})",
        ]
    return p


def wrap(
    command: str | Sequence[str],
    repo: Path,
    scratch: Path,
    *,
    network: bool,
    writable: Sequence[Path] = (),
    readonly: Sequence[Path] = (),
    home: Path | None = None,
    proxy_port: int | None = None,
) -> list[str]:
    """An argv running `command` (a shell string or argv) under Seatbelt; the caller runs it with cwd = `repo`.

    HOME (with `home`) and TMPDIR (the scratch directory) are set by `/usr/bin/env` inside the sandbox.
    """
    built = profile(repo, scratch, network=network, writable=writable, readonly=readonly, home=home,
                    proxy_port=proxy_port)
    argv = [SANDBOX_EXEC]
    for name, value in built.params.items():
        argv += ["-D", f"{name}={value}"]
    argv += ["-p", built.text, ENV, f"TMPDIR={Path(scratch).resolve()}"]
    if home is not None:
        argv.append(f"HOME={Path(home).resolve()}")
    argv += command_argv(command)
    return argv
