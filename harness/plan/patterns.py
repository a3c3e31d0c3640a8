"""Path patterns as PRD.json writes them (`protected`, `artifacts`): globs relative to the repository.

`*` and `?` stay within one path component, `**` spans directories, and a pattern covers what it
matches and everything below it, so `tests`, `tests/` and `tests/**` each cover the whole `tests`
directory. The guards, the editor tool and `ralph init` all read patterns through this module.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from pathlib import Path


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
