"""The macOS backend's Seatbelt profile, read back and evaluated (no Mac runs these tests).

`Sbpl` parses the generated SBPL and answers "is this operation on this path allowed?" for the
subset of the language the profile uses. Its reading is sound whatever Seatbelt's rule order: the
profile is `(deny default)` followed by `allow` rules only (checked first), so an operation is
allowed exactly when some allow rule matches it. A filter it does not know fails the test rather
than guessing.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.sandbox import environment, seatbelt

Expr = str | list["Expr"]
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def parse(text: str) -> list[Expr]:
    """The s-expressions of an SBPL text (comments dropped, strings unquoted)."""
    tokens = re.findall(r'\(|\)|"(?:[^"\\]|\\.)*"|;[^\n]*|[^\s()";]+', text)
    stack: list[list[Expr]] = [[]]
    for token in tokens:
        if token.startswith(";"):
            continue
        if token == "(":
            stack.append([])
        elif token == ")":
            assert len(stack) > 1, "unbalanced ')'"
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    assert len(stack) == 1, "unbalanced '('"
    return stack[0]


@dataclass
class Request:
    op: str
    path: str | None = None
    remote: tuple[str, str] | None = None  # ("ip", "host:port") or ("unix-socket", path)
    sysctl: str | None = None  # a kernel value's name (sysctl-read)
    service: str | None = None  # a system service's name (mach-lookup)


@dataclass
class Sbpl:
    rules: list[list[Expr]]
    params: dict[str, str]

    @classmethod
    def of(cls, built: seatbelt.Profile) -> Sbpl:
        return cls([r for r in parse(built.text) if isinstance(r, list)], built.params)

    def value(self, expr: Expr) -> str:
        if isinstance(expr, list):
            assert expr[0] == "param", f"not a string: {expr}"
            return self.params[self.value(expr[1])]
        assert expr.startswith('"'), f"not a string: {expr}"
        return expr[1:-1]

    def matches(self, f: Expr, req: Request) -> bool:
        assert isinstance(f, list), f"not a filter: {f}"
        head, args = f[0], f[1:]
        if head == "require-all":
            return all(self.matches(a, req) for a in args)
        if head == "require-any":
            return any(self.matches(a, req) for a in args)
        if head == "require-not":
            return not self.matches(args[0], req)
        if head in ("subpath", "literal"):
            if req.path is None:
                return False
            root = self.value(args[0])
            return req.path == root or (head == "subpath" and (root == "/" or req.path.startswith(root + "/")))
        if head in ("sysctl-name", "sysctl-name-prefix"):
            want = self.value(args[0])
            return req.sysctl is not None and (req.sysctl == want or (head.endswith("prefix")
                                                                       and req.sysctl.startswith(want)))
        if head == "global-name":
            return req.service == self.value(args[0])
        if head == "remote":
            if req.remote is None or req.remote[0] != args[0]:
                return False
            if args[0] == "unix-socket":
                return self.matches(args[1], Request(req.op, path=req.remote[1]))
            want_host, want_port = self.value(args[1]).rsplit(":", 1)
            host, port = req.remote[1].rsplit(":", 1)
            host_ok = want_host == "*" or (want_host == "localhost" and host in LOOPBACK)
            return host_ok and want_port in ("*", port)
        raise AssertionError(f"the test's reader does not know the filter {head!r} (in a rule for {req.op})")

    def allows(self, op: str, path: str | Path | None = None, remote: tuple[str, str] | None = None,
               sysctl: str | None = None, service: str | None = None) -> bool:
        req = Request(op, str(path) if path is not None else None, remote, sysctl, service)
        for action, *rest in self.rules:
            if action != "allow":
                continue
            ops = [r for r in rest if isinstance(r, str)]
            filters = [r for r in rest if isinstance(r, list)]
            if any(o == op or (o.endswith("*") and op.startswith(o[:-1])) for o in ops):
                if not filters or any(self.matches(f, req) for f in filters):
                    return True
        return False

    def reads(self, path: Path) -> bool:
        return self.allows("file-read-data", path)

    def writes(self, path: Path) -> bool:
        return self.allows("file-write-create", path) and self.allows("file-write-data", path)


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A Mac-like layout under tmp_path: the repository inside the user's home, a CLI installed there, the
    shared /private/tmp, and the user's TMPDIR (var/folders/…/T) holding the command's scratch directory."""
    home, shared, user_tmp = tmp_path / "Users" / "ada", tmp_path / "private" / "tmp", tmp_path / "var" / "T"
    repo = home / "code" / "proj"
    for d in (repo / ".ralph", repo / ".git", repo / ".venv" / "lib", repo / "src", home / ".ssh",
              home / ".nvm" / "node", user_tmp / "scratch" / "home", shared / "other", tmp_path / "run"):
        d.mkdir(parents=True)
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / "PRD.json").write_text("{}")
    (repo / ".ralph" / "attempt.json").write_text("{}")
    (home / ".ssh" / "id_ed25519").write_text("KEY")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(seatbelt, "SHARED_TMP", (str(shared),))
    monkeypatch.setattr(seatbelt.tempfile, "gettempdir", lambda: str(user_tmp))
    return {"home": home.resolve(), "repo": repo.resolve(), "scratch": (user_tmp / "scratch").resolve(),
            "cli": (home / ".nvm" / "node").resolve(), "other": (shared / "other").resolve(),
            "user_tmp": user_tmp.resolve(), "run": (tmp_path / "run").resolve()}


def agent_profile(paths: dict[str, Path], **options: object) -> Sbpl:
    """What an agent CLI gets: a private home, the judge's files and the CLI's install tree read-only."""
    repo = paths["repo"]
    built = seatbelt.profile(repo, paths["scratch"], network=options.pop("network", False),
                             readonly=[repo / ".venv", repo / "PRD.json", repo / ".git", paths["cli"]],
                             home=paths["scratch"] / "home", **options)  # type: ignore[arg-type]
    return Sbpl.of(built)


def test_the_profile_denies_by_default_and_every_allow_is_bounded(layout: dict[str, Path]) -> None:
    sb = agent_profile(layout, network=True)
    assert sb.rules[:2] == [["version", "1"], ["deny", "default"]]
    assert [r for r in sb.rules[2:] if r[0] != "allow"] == []  # allows only: no rule order to depend on
    for rule in sb.rules[2:]:
        ops = [r for r in rule[1:] if isinstance(r, str)]
        if any(o in ("default", "file*", "network*") or o.startswith(("file-read", "file-write")) for o in ops):
            assert any(isinstance(r, list) for r in rule[1:]), f"an unbounded allow: {rule}"


def test_the_agent_reads_the_system_and_its_repository_but_not_the_home_tmp_or_ralphs_records(
        layout: dict[str, Path]) -> None:
    sb, repo, home = agent_profile(layout), layout["repo"], layout["home"]
    assert sb.reads(Path("/usr/lib/libSystem.B.dylib")) and sb.reads(Path("/etc/hosts"))
    assert sb.reads(repo / "src" / "model.py") and sb.reads(repo / "PRD.json")
    assert sb.reads(layout["scratch"] / "home" / ".claude.json")  # its private home
    assert sb.reads(layout["cli"] / "bin" / "node")  # its install tree, though under the home
    assert not sb.reads(home / ".ssh" / "id_ed25519")
    assert not sb.reads(home / ".gitconfig") and not sb.reads(home)
    assert not sb.reads(layout["run"] / "bus")  # the per-user runtime directory
    assert not sb.reads(layout["other"] / "notes.txt")  # another program's temporary files (/tmp)
    assert not sb.reads(layout["user_tmp"] / "ralph-scratch-other" / "prompt.md")  # and in the user's TMPDIR
    assert not sb.reads(repo / ".ralph" / "attempt.json") and not sb.reads(repo / ".ralph")
    # the way to the repository can be walked (realpath), not listed or read
    assert sb.allows("file-read-metadata", home / "code") and not sb.reads(home / "code")
    assert not sb.allows("file-read-metadata", home / ".ssh")


def test_the_agent_writes_only_its_repository_and_scratch_minus_the_read_only_paths(layout: dict[str, Path]) -> None:
    sb, repo, home = agent_profile(layout), layout["repo"], layout["home"]
    assert sb.writes(repo / "src" / "model.py") and sb.writes(repo / "new.txt")
    assert sb.writes(layout["scratch"] / "tmpfile") and sb.writes(layout["scratch"] / "home" / ".cache")
    for denied in (repo / "PRD.json", repo / ".git" / "config", repo / ".git" / "hooks" / "pre-commit",
                   repo / ".venv" / "lib" / "evil.pth", repo / ".venv", repo / ".ralph" / "attempt.json",
                   repo / ".ralph" / "new", home / ".bashrc", home / ".ssh" / "authorized_keys",
                   layout["cli"] / "lib" / "index.js", layout["other"] / "x", Path("/etc/hosts"),
                   Path("/usr/local/lib/python3.12/site-packages/sitecustomize.py")):
        assert not sb.allows("file-write-create", denied), denied
        assert not sb.allows("file-write-unlink", denied), denied
    assert sb.allows("file-write-data", "/dev/null") and not sb.allows("file-write-data", "/dev/disk0")


def test_a_directory_above_a_read_only_path_cannot_be_moved_away(layout: dict[str, Path]) -> None:
    """`mv tests tests.old; mkdir -p tests/unit; echo pass > tests/unit/test_score.py` would take the protected
    test out from under its path rule: the directories above a read-only path (or .ralph) are not renamed."""
    repo = layout["repo"]
    (repo / "tests" / "unit").mkdir(parents=True)
    (repo / "tests" / "unit" / "test_score.py").write_text("assert False\n")
    sb = Sbpl.of(seatbelt.profile(repo, layout["scratch"], network=False, home=layout["scratch"] / "home",
                                  readonly=[repo / "tests" / "unit" / "test_score.py", repo / ".git"]))
    for above in (repo / "tests", repo / "tests" / "unit", repo):
        assert not sb.allows("file-write-unlink", above), above  # the source of a rename, or rmdir
        assert not sb.allows("file-write-create", above), above
    assert sb.writes(repo / "tests" / "unit" / "test_other.py") and sb.writes(repo / "tests" / "helper.py")
    assert sb.allows("file-write-unlink", repo / "src")  # a directory above nothing read-only stays the agent's


def test_checks_keep_the_users_home_readable_but_not_writable(layout: dict[str, Path]) -> None:
    """Without a private home (what a check gets: datasets and caches live there) the home is visible, read-only."""
    sb = Sbpl.of(seatbelt.profile(layout["repo"], layout["scratch"], network=True))
    assert sb.reads(layout["home"] / "datasets" / "cifar")
    assert not sb.writes(layout["home"] / "datasets" / "cifar")
    assert not sb.reads(layout["other"] / "x") and not sb.reads(layout["repo"] / ".ralph" / "state.json")


@pytest.mark.parametrize(("network", "proxy_port", "reachable"), [
    (False, None, []),
    (True, None, [("ip", "203.0.113.7:443"), ("ip", "localhost:8080"), ("ip", "localhost:3128"),
                  ("ip", "127.0.0.1:3128")]),
    (True, 3128, [("ip", "localhost:3128"), ("ip", "127.0.0.1:3128")]),
    (False, 3128, [("ip", "localhost:3128"), ("ip", "127.0.0.1:3128")]),
])
def test_the_network_is_closed_unless_asked_and_a_proxy_port_is_the_only_way_out(
        layout: dict[str, Path], network: bool, proxy_port: int | None, reachable: list[tuple[str, str]]) -> None:
    sb = agent_profile(layout, network=network, proxy_port=proxy_port)
    tried = [("ip", "203.0.113.7:443"), ("ip", "localhost:8080"), ("ip", "localhost:3128"), ("ip", "127.0.0.1:3128"),
             ("unix-socket", "/private/var/run/docker.sock"), ("unix-socket", f"{layout['home']}/.ssh/agent.sock")]
    assert [r for r in tried if sb.allows("network-outbound", remote=r)] == reachable


def test_the_agent_reads_the_machine_but_not_another_process(layout: dict[str, Path]) -> None:
    """`kern.procargs2` of ralph's pid would hand the agent ralph's arguments and environment (its API keys);
    `process-info*` and signals reach only processes in the same sandbox."""
    sb = agent_profile(layout)
    for known in ("hw.ncpu", "hw.memsize", "hw.optional.arm64", "kern.osrelease", "machdep.cpu.brand_string"):
        assert sb.allows("sysctl-read", sysctl=known), known
    for secret in ("kern.procargs2", "kern.procargs", "kern.proc.all", "kern.proc.uid.501", "security.mac.amfi"):
        assert not sb.allows("sysctl-read", sysctl=secret), secret
    others = [r for r in sb.rules if r[0] == "allow" and any(o in ("signal", "process-info*") for o in r[1:])]
    assert others and all(r[-1] == ["target", "same-sandbox"] for r in others)


def test_system_services_are_named_and_the_keychain_is_not_one(layout: dict[str, Path]) -> None:
    """mach-lookup is allowed service by service; TLS checks (trustd) only with the network; never the
    keychain's securityd, whatever the network."""
    closed, open_ = agent_profile(layout), agent_profile(layout, network=True)
    assert closed.allows("mach-lookup", service="com.apple.system.opendirectoryd.libinfo")  # user names
    assert open_.allows("mach-lookup", service="com.apple.trustd.agent")
    assert not closed.allows("mach-lookup", service="com.apple.trustd.agent")
    for sb in (closed, open_):
        for service in ("com.apple.SecurityServer", "com.apple.securityd.xpc", "com.apple.pasteboard.1",
                        "com.apple.coreservices.launchservicesd"):
            assert not sb.allows("mach-lookup", service=service), service


def test_a_bad_proxy_port_is_refused(layout: dict[str, Path]) -> None:
    for port in (0, 70000):
        with pytest.raises(ValueError, match="not a TCP port"):
            seatbelt.profile(layout["repo"], layout["scratch"], network=False, proxy_port=port)


def test_a_hostile_directory_name_cannot_add_a_rule(tmp_path: Path, layout: dict[str, Path]) -> None:
    """Paths go in as -D parameters: a repository named like SBPL stays a name."""
    repo = tmp_path / 'x") (allow default) (allow file-write* (subpath "'
    repo.mkdir()
    built = seatbelt.profile(repo, layout["scratch"], network=False)
    assert "allow default" not in built.text and str(repo) in built.params.values()
    sb = Sbpl.of(built)
    assert sb.writes(repo.resolve() / "f") and not sb.writes(Path("/etc/passwd"))


def test_the_argv_runs_bash_under_sandbox_exec_with_home_and_tmpdir(layout: dict[str, Path]) -> None:
    home = layout["scratch"] / "home"
    argv = seatbelt.wrap("echo hi", layout["repo"], layout["scratch"], network=False, home=home)
    assert argv[0] == "/usr/bin/sandbox-exec"
    profile_at = argv.index("-p")
    defined = dict(v.split("=", 1) for k, v in zip(argv[1:profile_at:2], argv[2:profile_at:2], strict=True)
                   if k == "-D")
    assert set(defined) == set(re.findall(r'\(param "([A-Z_0-9]+)"\)', argv[profile_at + 1]))  # each one defined
    assert argv[profile_at + 2:] == ["/usr/bin/env", f"TMPDIR={layout['scratch']}", f"HOME={home}",
                                     "bash", "-c", "echo hi"]
    assert seatbelt.wrap(["python", "-V"], layout["repo"], layout["scratch"], network=False)[-3:] == [
        f"TMPDIR={layout['scratch']}", "python", "-V"]


def test_confine_picks_the_backend_and_keeps_the_toolchains_read_only(layout: dict[str, Path]) -> None:
    """One function chooses bwrap or Seatbelt; Seatbelt gets the same toolchains bwrap binds read-only."""
    repo, scratch = layout["repo"], layout["scratch"]
    assert environment.confine("bwrap", "true", repo, scratch, network=False)[0] == "bwrap"
    argv = environment.confine("seatbelt", "true", repo, scratch, network=False)
    at = argv.index("-p")
    sb = Sbpl(
        [r for r in parse(argv[at + 1]) if isinstance(r, list)],
        dict(v.split("=", 1) for v in argv[2:at:2]),
    )
    assert not sb.writes(repo / ".venv" / "lib" / "site.pth")  # the repository's own venv
    assert not sb.writes(Path(sys.prefix).resolve() / "lib" / "x.pth")  # ralph's interpreter
    assert sb.writes(repo / "src" / "x.py")
    with pytest.raises(ValueError, match="confines nothing"):
        environment.confine("none", "true", repo, scratch, network=False)
