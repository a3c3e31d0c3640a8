"""Protected paths: what the agent may not change, and the before/after comparison that enforces it.

The loop calls `snapshot` before an attempt and `check_and_restore` after it, after the checks
and right before the commit. Any difference in a protected file (edited, deleted, replaced by a
link, or newly created where a protected glob matches) is undone, and the returned list of paths
makes the attempt a "tampering" verdict. Besides the PRD's globs this always covers the harness's
records, ralph's own configuration, the test runner's configuration (root conftest.py, pytest.ini,
and the ralph/pytest tables of pyproject.toml, setup.cfg and tox.ini: the rest of those files stays
the agent's to edit), and all of `.git/` but git's own data (an allow-list, `GIT_DATA`).

Patterns are read as `harness.plan.patterns` says (a pattern covers everything below what it matches).
"""

from __future__ import annotations

import base64
import configparser
import functools
import hashlib
import json
import os
import shutil
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.books.layout import CONFIG_FILE, GIT_DIR, HARNESS_FILES, RALPH_DIR
from harness.plan.patterns import expand, matching_pattern

# Never writable by the agent's editor tool (and read-only inside the bwrap sandbox).
ALWAYS_PROTECTED = (*HARNESS_FILES, f"{RALPH_DIR}/**", f"{GIT_DIR}/**")
# Compared around every attempt. `.ralph/` is left out because the harness writes the attempt's
# transcript there while it runs; `.git/` is guarded by `git_control_files`, below.
GUARDED = (*HARNESS_FILES, CONFIG_FILE, "conftest.py")
# What may change under `.git/` while the agent works: git's own data (objects, refs and their logs,
# the index, the HEAD files), which the loop's ref checks (books/git/refs) and commits look after.
# Everything else there is guarded whole — compared, put back, a new file removed — whatever its
# name: config, config.worktree, commondir, objects/info/alternates, info/attributes, hooks,
# worktrees/*, modules/* and any file a later git learns to read can redirect what ralph's own git
# runs or reads (a filter driver, another object store, another repository's config). A list of
# those names would miss the next one; the list of data git writes is short and stable.
GIT_DATA = tuple(f"{GIT_DIR}/{p}" for p in (
    "objects/??/**", "objects/pack/**", "refs/**", "logs/**", "packed-refs", "index", "HEAD",
    "ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "gc.log", "gc.pid", "lfs/objects/**", "lfs/tmp/**"))
# The test runner's dedicated configuration files, also guarded whole; the installed pytest's own list is
# added when it has one (runner_config_files).
RUNNER_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml")
# Files of which only some tables are guarded: what configures ralph's run and the test runner.
CONFIG_TABLES: dict[str, tuple[str, ...]] = {
    "pyproject.toml": ("tool.ralph", "tool.pytest"),
    "setup.cfg": ("tool:pytest",),
    "tox.ini": ("pytest",),
}


def readonly_paths(repo: Path, patterns: Iterable[str] = ()) -> list[Path]:
    """Paths a sandbox mounts read-only: the always-protected ones plus what the PRD's globs cover.

    A `dir/**` glob becomes one mount of `dir`; other globs mount the files they match now.
    """
    paths = [repo / pattern.removesuffix("/**") for pattern in ALWAYS_PROTECTED]
    for pattern in dict.fromkeys(p.strip("/") for p in patterns):
        if pattern in ALWAYS_PROTECTED:
            continue
        base = pattern.removesuffix("/**")
        if base != pattern and not any(c in base for c in "*?["):
            paths.append(repo / base)
        else:
            paths.extend(repo / rel for rel in sorted(expand(repo, [pattern])))
    return paths


@dataclass(frozen=True)
class FileState:
    """One protected file as it was: content (or link target), permission bits, and its stat fingerprint
    (`fingerprint`) when it was read, or None when unknown (restored from disk, or changing as it was read)."""

    data: bytes
    mode: int
    link: str | None = None
    stat: tuple[int, ...] | None = None

    @functools.cached_property
    def sha256(self) -> str:
        """Computed when first compared: a file whose stat fingerprint is unchanged is never hashed."""
        if self.link is not None:
            return hashlib.sha256(b"link:" + self.link.encode()).hexdigest()
        return hashlib.sha256(self.data).hexdigest()

    def same(self, other: FileState) -> bool:
        return (self.link, self.mode) == (other.link, other.mode) and self.data == other.data


def fingerprint(path: Path) -> tuple[int, ...] | None:
    """Device, inode, size, mtime and ctime of `path` itself (not a link's target), or None when it is gone.

    Equal fingerprints mean equal content: the kernel sets ctime on every write, rename and chmod, and no
    unprivileged process can set it back (utime sets only mtime and atime); progress.txt's record relies
    on the same rule (books/progress.py)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode


@dataclass(frozen=True)
class Snapshot:
    repo: Path
    patterns: tuple[str, ...]
    entries: dict[str, FileState]
    configs: dict[str, tuple[str, FileState | None]]  # CONFIG_TABLES file -> (digest of its tables, the file)

    def without(self, *rels: str) -> Snapshot:
        """This snapshot minus some files (ones ralph itself has written since): neither compared nor restored."""
        kept = {rel: e for rel, e in self.entries.items() if rel not in rels}
        return Snapshot(self.repo, tuple(p for p in self.patterns if p not in rels), kept, self.configs)

    def to_json(self) -> dict:
        """A JSON-able copy (file contents base64), so a crashed run can restore from disk."""
        def entry(e: FileState | None) -> dict | None:
            return None if e is None else {"sha256": e.sha256, "data": base64.b64encode(e.data).decode(),
                                           "mode": e.mode, "link": e.link}
        return {"repo": str(self.repo), "patterns": list(self.patterns),
                "entries": {rel: entry(e) for rel, e in self.entries.items()},
                "configs": {rel: [digest, entry(e)] for rel, (digest, e) in self.configs.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Snapshot:
        def entry(d: dict | None) -> FileState | None:
            return None if d is None else FileState(base64.b64decode(d["data"]), d["mode"], d["link"])
        return cls(Path(data["repo"]), tuple(data["patterns"]),
                   {rel: entry(e) for rel, e in data["entries"].items()},  # type: ignore[misc]
                   {rel: (digest, entry(e)) for rel, (digest, e) in data["configs"].items()})


def config_digest(path: Path, tables: Sequence[str]) -> str:
    """Hash of the guarded tables of a TOML/INI file ("absent" when the file is missing)."""
    if not (path.is_file() or path.is_symlink()):
        return "absent"
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data: object = tomllib.loads(text)
            picked = {}
            for table in tables:
                value = data
                for key in table.split("."):
                    value = value.get(key, {}) if isinstance(value, dict) else {}
                picked[table] = value
        else:
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(text)
            picked = {t: dict(parser[t]) if parser.has_section(t) else {} for t in tables}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, configparser.Error):
        return "unreadable:" + hashlib.sha256(path.read_bytes() if path.is_file() else b"").hexdigest()
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()


# A fingerprint is trusted only for a file last changed this long before it was read: the kernel's file
# clock ticks coarsely (a jiffy, up to 10 ms), so a write in the same tick could leave ctime unchanged.
SETTLED_NS = 20_000_000


def _read(path: Path) -> FileState:
    start = time.time_ns()
    before = fingerprint(path)
    settled = before if before is not None and before[4] < start - SETTLED_NS else None
    if path.is_symlink():
        return FileState(b"", 0, os.readlink(path), settled)
    data = path.read_bytes()
    return FileState(data, path.stat().st_mode & 0o7777, stat=settled if fingerprint(path) == before else None)


def _unchanged(path: Path, entry: FileState) -> bool:
    """`path` is still exactly what `entry` read, by its stat fingerprint alone (no read of a long log)."""
    return entry.stat is not None and fingerprint(path) == entry.stat


@functools.cache
def runner_config_files() -> tuple[str, ...]:
    """Every file name the test runner reads its configuration from that is not one of CONFIG_TABLES's shared
    files: RUNNER_CONFIG_FILES, plus the installed pytest's own list where it has one (pytest 9 names its
    loaders in CONFIG_LOADERS_BY_NAME; a later version's new name is guarded without a change here)."""
    try:
        from _pytest.config.findpaths import CONFIG_LOADERS_BY_NAME
    except ImportError:  # no pytest where ralph runs, or one older than 9
        installed: tuple[str, ...] = ()
    else:
        installed = tuple(CONFIG_LOADERS_BY_NAME)
    return tuple(n for n in dict.fromkeys((*RUNNER_CONFIG_FILES, *installed)) if n not in CONFIG_TABLES)


def git_control_files(repo: Path) -> set[str]:
    """Every file (or link) under `repo`'s .git/ that is not git's own data (`GIT_DATA`): what is guarded there."""
    root = repo / GIT_DIR
    found: set[str] = set()
    if root.is_symlink() or root.is_file():  # a `.git` file (gitdir: …) or link would send git elsewhere
        return {GIT_DIR}
    for top, dirs, files in os.walk(root):
        below = Path(top).relative_to(repo).as_posix()
        dirs[:] = [d for d in dirs if not matching_pattern(f"{below}/{d}/x", GIT_DATA) or (Path(top) / d).is_symlink()]
        names = [*files, *(d for d in dirs if (Path(top) / d).is_symlink())]
        found.update(rel for rel in (f"{below}/{n}" for n in names) if not matching_pattern(rel, GIT_DATA))
    return found


def _guarded(repo: Path, patterns: Sequence[str]) -> set[str]:
    return expand(repo, patterns) | git_control_files(repo)


def snapshot(repo: Path, patterns: Sequence[str] = ()) -> Snapshot:
    """Record the protected files: `GUARDED`, `.git/` but its data, the test runner's configuration files and the
    PRD's `protected` globs."""
    repo = Path(repo).resolve()
    all_patterns = tuple(dict.fromkeys((*GUARDED, *runner_config_files(), *patterns)))
    configs = {rel: (config_digest(repo / rel, tables), _read(repo / rel) if (repo / rel).is_file() else None)
               for rel, tables in CONFIG_TABLES.items()}
    return Snapshot(repo, all_patterns, {rel: _read(repo / rel) for rel in sorted(_guarded(repo, all_patterns))},
                    configs)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # an agent replaced a protected file by a directory
    elif path.exists() or path.is_symlink():
        path.unlink()


def _restore(path: Path, entry: FileState, source: Path | None = None) -> None:
    """Make `path` what `entry` read; from `source` (the file it was read from) by a kernel copy when that
    is provably unchanged since, so a long log is not written out of Python's memory."""
    _remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if entry.link is not None:
        path.symlink_to(entry.link)
        return
    if source is not None and _unchanged(source, entry):
        shutil.copyfile(source, path, follow_symlinks=False)
        if _unchanged(source, entry):  # and still so after the copy: nothing changed it meanwhile
            path.chmod(entry.mode)
            return
    path.write_bytes(entry.data)
    path.chmod(entry.mode)


def check_and_restore(repo: Path, before: Snapshot) -> list[str]:
    """Compare protected paths with `before`, put them back, and return those that had changed."""
    repo = Path(repo).resolve()
    changed: list[str] = []
    for rel, entry in before.entries.items():
        path = repo / rel
        if _unchanged(path, entry):
            continue
        now = _read(path) if (path.is_symlink() or path.is_file()) else None
        if now is None or now.sha256 != entry.sha256 or now.mode != entry.mode:
            _restore(path, entry)
            changed.append(rel)
    for rel in sorted(_guarded(repo, before.patterns) - before.entries.keys()):
        _remove(repo / rel)
        changed.append(rel)
    for rel, (digest, entry) in before.configs.items():
        if config_digest(repo / rel, CONFIG_TABLES[rel]) != digest:
            _restore(repo / rel, entry) if entry is not None else _remove(repo / rel)
            changed.append(f"{rel} [{'], ['.join(CONFIG_TABLES[rel])}]")
    return sorted(changed)


def put_back_paths(before: Snapshot) -> list[str]:
    """The files `put_back` writes from `before` (so a checkout may leave them out)."""
    return [rel for rel in before.entries if not rel.startswith((f"{GIT_DIR}/", f"{RALPH_DIR}/"))]


def put_back(root: Path, before: Snapshot) -> None:
    """Make the protected files under `root` (a clean checkout of the candidate) what `before` saw.

    Files under .git/ and .ralph/ are skipped: a checkout for the checks has no repository or records.
    """
    root = Path(root)
    for rel in sorted(expand(root, before.patterns) - before.entries.keys()):
        _remove(root / rel)
    for rel in put_back_paths(before):
        path, entry = root / rel, before.entries[rel]
        if entry.link is None and path.is_file() and not path.is_symlink() and path.stat().st_size == len(entry.data) \
                and _read(path).same(entry):
            continue  # already as it was: no rewrite of a large log
        _restore(path, entry, before.repo / rel)
    for rel, (_, entry) in before.configs.items():
        _restore(root / rel, entry) if entry is not None else _remove(root / rel)
