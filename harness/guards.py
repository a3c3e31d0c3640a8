"""Protected paths: what the agent may not change, and the before/after comparison that enforces it.

The loop calls `snapshot` before an attempt and `check_and_restore` after it. Any difference in a
protected file (edited, deleted, replaced by a link, or newly created where a protected glob
matches) is undone, and the returned list of paths makes the attempt a "tampering" verdict.

Patterns are globs relative to the repository: `*` and `?` stay within one path component,
`**` spans directories, and a pattern covers what it matches and everything below it, so `tests`,
`tests/` and `tests/**` each protect the whole `tests` directory.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Never writable by the agent's editor tool (and read-only inside the bwrap sandbox).
ALWAYS_PROTECTED = ("PRD.json", "progress.txt", ".ralph/**", ".git/**")
# Compared around every attempt. `.ralph/` is left out because the harness writes the attempt's
# transcript there while it runs; `.git/` objects are the loop's business (vcs.py), but its
# config and hooks could make the harness's own commits run agent code.
GUARDED = ("PRD.json", "progress.txt", ".git/config", ".git/hooks/**")


def _clean(pattern: str) -> str:
    """A pattern as written in PRD.json, without leading `./` or `/` and trailing `/`."""
    pattern = pattern.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.strip("/")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    # Hand-written because fnmatch lets `*` cross `/` and glob.translate only exists from 3.13;
    # this keeps the editor's refusals and `expand` (glob with recursive=True) in agreement.
    # As in .gitignore, a pattern covers the paths it matches and everything below them: `tests`,
    # `tests/` and `tests/**` all protect the whole directory.
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return re.compile("".join(out) + r"(?:/.*)?\Z")


def matching_pattern(rel_path: str, patterns: Iterable[str]) -> str | None:
    """The first pattern that covers `rel_path` (POSIX, relative to the repository), or None."""
    rel = rel_path.strip("/")
    for pattern in patterns:
        if _clean(pattern) and _glob_regex(_clean(pattern)).match(rel):
            return pattern
    return None


def expand(repo: Path, patterns: Iterable[str]) -> set[str]:
    """Relative POSIX paths of the files (and links) under `repo` that the patterns cover: the
    files they match, and every file below a directory they match."""
    found: set[str] = set()
    for pattern in filter(None, map(_clean, patterns)):
        for rel in glob.glob(pattern, root_dir=repo, recursive=True, include_hidden=True):
            path = repo / rel
            if path.is_symlink() or path.is_file():
                found.add(Path(rel).as_posix())
            elif path.is_dir():
                for top, dirs, files in os.walk(path):  # does not follow links; they are entries themselves
                    below = Path(top).relative_to(repo)
                    found.update((below / name).as_posix() for name in files)
                    found.update((below / name).as_posix() for name in dirs if (Path(top) / name).is_symlink())
    return found


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
class Entry:
    """One protected file as it was: content (or link target) and permission bits."""

    sha256: str
    data: bytes
    mode: int
    link: str | None = None


@dataclass(frozen=True)
class Snapshot:
    repo: Path
    patterns: tuple[str, ...]
    entries: dict[str, Entry]


def _read(path: Path) -> Entry:
    if path.is_symlink():
        target = os.readlink(path)
        return Entry(hashlib.sha256(b"link:" + target.encode()).hexdigest(), b"", 0, target)
    data = path.read_bytes()
    return Entry(hashlib.sha256(data).hexdigest(), data, path.stat().st_mode & 0o7777)


def snapshot(repo: Path, patterns: Sequence[str] = ()) -> Snapshot:
    """Record the protected files: `GUARDED` plus the PRD's `protected` globs."""
    repo = Path(repo).resolve()
    all_patterns = tuple(dict.fromkeys((*GUARDED, *patterns)))
    return Snapshot(repo, all_patterns, {rel: _read(repo / rel) for rel in sorted(expand(repo, all_patterns))})


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # an agent replaced a protected file by a directory
    elif path.exists() or path.is_symlink():
        path.unlink()


def _restore(path: Path, entry: Entry) -> None:
    _remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if entry.link is not None:
        path.symlink_to(entry.link)
    else:
        path.write_bytes(entry.data)
        path.chmod(entry.mode)


def check_and_restore(repo: Path, before: Snapshot) -> list[str]:
    """Compare protected paths with `before`, put them back, and return those that had changed."""
    repo = Path(repo).resolve()
    changed: list[str] = []
    for rel, entry in before.entries.items():
        path = repo / rel
        now = _read(path) if (path.is_symlink() or path.is_file()) else None
        if now is None or now.sha256 != entry.sha256 or now.mode != entry.mode:
            _restore(path, entry)
            changed.append(rel)
    for rel in sorted(expand(repo, before.patterns) - before.entries.keys()):
        _remove(repo / rel)
        changed.append(rel)
    return sorted(changed)
