"""The PYTHONSAFEPATH trap, found before an attempt is spent (`ralph validate`, `ralph run --dry-run`).

Checks run with PYTHONSAFEPATH=1 (executors.seed_runs): neither the working directory nor a script's
folder is on `sys.path`, so no file in the repository can stand in for a library the judge imports. The
price is that `python -m pytest`, `python train.py` or `python -m mypkg.train` cannot import the
repository's own code unless the project is installed (`pip install -e .`) or the command sets
`PYTHONPATH=.`. After an attempt the failure says so (views/show.py); this module says it first.

How a check is read: its simple commands (plan/lint.commands_in, `bash -c` included); a command that sets
PYTHONPATH anywhere is left alone. What each Python command needs from the repository:
- `python -m MOD`: MOD itself, when it is the repository's (`MOD.py` or `MOD/` at the top);
- `python SCRIPT.py`: the modules SCRIPT imports that sit beside it or at the top of the repository;
- `python -c CODE`: what CODE imports from the top of the repository;
- `pytest …` / `python -m pytest …`: what the test files import from the top of the repository, unless
  pytest puts it on the path itself (a `conftest.py` at the top, or `pythonpath` in its configuration);
  a module beside a test file is fine (pytest inserts the test's folder).
Those names are then asked of the project's Python (`-P`, from outside the repository): a name it can
import (an installed, editable or not) is fine; any other is reported with the fix.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.plan.lint import commands_in
from harness.plan.prd import PRD, Check

PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
TEST_RUNNERS = ("pytest", "py.test")
SKIPPED_DIRS = frozenset({".git", ".ralph", ".venv", "venv", "node_modules", "__pycache__", "runs", "site-packages"})
MAX_TEST_FILES = 400  # test files read per check; enough for any plan's test folder, bounded for a huge one

FIX = ("install the project (pip install -e .), or start the check's command with PYTHONPATH=. in PRD.json")


def explanation(name: str, where: str) -> str:
    """Why `name` (found at `where` in the repository) cannot be imported by a check, and the fix."""
    return (f"'{name}' is in the repository ({where}), but checks run with PYTHONSAFEPATH=1: neither the script's "
            "folder nor the working directory is on sys.path, so no file there can stand in for a library. "
            f"To fix: {FIX}")


@dataclass(frozen=True)
class Need:
    """A module a check's command needs from the repository, where it is, and the command that needs it."""

    name: str
    where: str  # relative to the repository
    command: str


def local_module(folder: Path, name: str, repo: Path) -> str | None:
    """Where `name` is as a module of `folder` (`name.py`, or a folder `name/` holding Python), relative to `repo`."""
    if (folder / f"{name}.py").is_file():
        return (folder / f"{name}.py").relative_to(repo).as_posix()
    package = folder / name
    if package.is_dir() and name not in SKIPPED_DIRS and any(package.glob("*.py")):
        return package.relative_to(repo).as_posix() + "/"
    return None


def imported_names(source: str) -> set[str]:
    """Top-level module names an absolute `import` in `source` names (a file that does not parse: none)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def pytest_puts_top_on_path(repo: Path) -> bool:
    """pytest itself inserts the repository's top: a `conftest.py` there, or `pythonpath` in its configuration."""
    if (repo / "conftest.py").is_file():
        return True
    try:
        table = tomllib.loads(_read(repo / "pyproject.toml")).get("tool", {}).get("pytest", {})
    except tomllib.TOMLDecodeError:
        table = {}
    options = table.get("ini_options", table) if isinstance(table, dict) else {}
    if isinstance(options, dict) and options.get("pythonpath"):
        return True
    return any(re.search(r"^\s*pythonpath\s*=", _read(repo / name), re.M)
               for name in ("pytest.ini", ".pytest.ini", "setup.cfg", "tox.ini"))


def _test_files(repo: Path, targets: list[str]) -> Iterator[Path]:
    """The test files `pytest TARGETS` collects by default naming (`test_*.py`, `*_test.py`), the whole
    repository when no target is given, at most MAX_TEST_FILES."""
    count = 0
    for target in targets or ["."]:
        path = (repo / target.split("::")[0]).resolve()
        if not path.is_relative_to(repo):
            continue
        found = [path] if path.is_file() else path.rglob("*.py") if path.is_dir() else []
        for file in found:
            parts = file.relative_to(repo).parts
            if any(p in SKIPPED_DIRS or p.startswith(".") for p in parts[:-1]):
                continue
            if file.name.startswith("test_") or file.name.endswith("_test.py") or file == path:
                count += 1
                if count > MAX_TEST_FILES:
                    return
                yield file


def _top_needs(repo: Path, names: Iterable[str], command: str, beside: Path | None = None) -> Iterator[Need]:
    for name in sorted(set(names)):
        where = (local_module(beside, name, repo) if beside is not None else None) or local_module(repo, name, repo)
        if where:
            yield Need(name, where, command)


def needs(repo: Path, command: str) -> Iterator[Need]:
    """What one check command needs from the repository that PYTHONSAFEPATH hides (see the module docstring)."""
    if "PYTHONPATH" in command:
        return  # the command sets it (PYTHONPATH=. …, env PYTHONPATH=…, export PYTHONPATH=…)
    for words in commands_in(command):
        program = words[0].rsplit("/", 1)[-1]
        args = words[1:]
        if PYTHON.match(program):
            while args and args[0].startswith("-") and args[0] not in ("-m", "-c"):
                args = args[1:]  # -u, -O, -X dev …: options before the script or module
            if not args:
                continue
            if args[0] == "-c" and len(args) > 1:
                yield from _top_needs(repo, imported_names(args[1]), command)
                continue
            if args[0] == "-m" and len(args) > 1:
                module = args[1]
                if module.split(".")[0] not in TEST_RUNNERS:
                    yield from _top_needs(repo, [module.split(".")[0]], command)
                    continue
                program, args = "pytest", args[2:]
            elif args[0].endswith(".py"):
                script = (repo / args[0]).resolve()
                if script.is_file() and script.is_relative_to(repo):
                    yield from _top_needs(repo, imported_names(_read(script)), command, beside=script.parent)
                continue
        if program in TEST_RUNNERS and not pytest_puts_top_on_path(repo):
            paths = [a for a in args if not a.startswith("-") and ("/" in a or a.endswith(".py") or "::" in a)]
            targets = [a for a in args if not a.startswith("-") and (repo / a.split("::")[0]).exists()]
            if paths and not targets:
                continue  # the tests are not written yet: nothing to import
            for test in _test_files(repo, targets):
                beside = {n for n in imported_names(_read(test)) if local_module(test.parent, n, repo)}
                yield from _top_needs(repo, imported_names(_read(test)) - beside, command)


def importable(python: Path, names: Iterable[str]) -> set[str]:
    """The names `python` can import as checks run it (-P), from outside the repository."""
    names = sorted(set(names))
    if not names:
        return set()
    probe = ("import importlib.util, json, sys\n"
             "def found(n):\n    try:\n        return importlib.util.find_spec(n) is not None\n"
             "    except (ImportError, ValueError):\n        return False\n"
             "print(json.dumps([n for n in json.loads(sys.argv[1]) if found(n)]))")
    with tempfile.TemporaryDirectory(prefix="ralph-safepath-") as neutral:
        try:
            done = subprocess.run([str(python), "-P", "-c", probe, json.dumps(names)], cwd=neutral,
                                  capture_output=True, text=True, timeout=60, check=False)
            return set(json.loads(done.stdout)) if done.returncode == 0 else set()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return set()


def _checks(prd: PRD) -> Iterator[tuple[str, Check]]:
    for f in prd.features:
        yield from ((f"{f.id} · check '{c.name}'", c) for c in f.verify)
    for p in prd.phases:
        yield from ((f"phase {p.id} · entry check '{c.name}'", c) for c in p.entry)
        yield from ((f"phase {p.id} · exit check '{c.name}'", c) for c in p.exit)


def safe_path_warnings(prd: PRD, repo: Path, python: Path | None = None) -> list[str]:
    """One warning per check whose command cannot import a module of the repository it needs, with the fix."""
    repo = Path(repo).resolve()
    found = [(where, list(needs(repo, check.run))) for where, check in _checks(prd) if check.run]
    missing = {n.name for _, ns in found for n in ns} - importable(python or Path(sys.executable),
                                                                   {n.name for _, ns in found for n in ns})
    warnings = []
    for where, ns in found:
        hidden = list({n.name: n for n in ns if n.name in missing}.values())
        if hidden:
            names = ", ".join(f"'{n.name}' ({n.where})" for n in hidden)
            warnings.append(f"{where}: `{hidden[0].command}` cannot import {names}: checks run with "
                            "PYTHONSAFEPATH=1, so neither the working directory nor a script's folder is on "
                            f"sys.path. To fix: {FIX}")
    return warnings
