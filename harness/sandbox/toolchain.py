"""Has the agent changed the Python that ralph and the checks run? A fingerprint taken around an attempt.

Under bwrap the toolchains are read-only to the agent (environment.wrap). Without a sandbox nothing
stops an agent from writing a `.pth` file, a `sitecustomize.py` or an edited module into a
virtual environment, and the next check would run it (the issue's reproduction made `json.dumps`
report 0.99 in checks). Such a change cannot be put back the way a protected file is, so it is
detected instead, cheaply (a stat per entry, no file read; tens of milliseconds): the entries of each
toolchain's `lib/python3*` directory and of its site-packages, and of the user's site-packages, by
size, mtime and ctime (ctime cannot be set back from user space, so restoring an mtime hides
nothing). That covers every file Python runs at start-up (`*.pth`, `sitecustomize`, `usercustomize`)
and every module or package added, removed or replaced at the top of a site directory; an edit deep
inside an existing package is not seen (only the sandbox's read-only mount stops that: docs/judge.md).
"""

from __future__ import annotations

import site
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.sandbox.environment import toolchains

Stat = tuple[int, int, int]  # size, mtime_ns, ctime_ns
SITE_DIRS = ("site-packages", "dist-packages")


@dataclass(frozen=True)
class Fingerprint:
    """The entries `fingerprint` stats: path -> (size, mtime_ns, ctime_ns)."""

    roots: tuple[Path, ...]
    files: dict[str, Stat]

    def changes(self, now: Fingerprint) -> list[str]:
        """Paths created, removed or changed since this fingerprint (`.pth` and *customize files first)."""
        changed = sorted(p for p in self.files.keys() | now.files.keys() if self.files.get(p) != now.files.get(p))
        return sorted(changed, key=lambda p: (not _runs_at_startup(p), p))


def _runs_at_startup(path: str) -> bool:
    """Files that Python executes at every interpreter start: what an attacker plants first."""
    name = Path(path).name
    return name.endswith(".pth") or name in ("sitecustomize.py", "usercustomize.py")


def library_roots(repo: Path, extra: Iterable[Path] = ()) -> tuple[Path, ...]:
    """The library trees of every toolchain ralph or the checks run (`environment.toolchains`, plus `extra`
    interpreter prefixes such as the project's check Python), and the user's site-packages."""
    prefixes = dict.fromkeys([*toolchains(repo), *(Path(p).resolve() for p in extra)])
    roots = [lib for prefix in prefixes for lib in sorted((prefix / "lib").glob("python3*")) if lib.is_dir()]
    user_site = Path(site.getusersitepackages())
    if user_site.is_dir():
        roots.append(user_site.resolve())
    return tuple(dict.fromkeys(roots))


def _entries(directory: Path) -> Iterator[Path]:
    try:
        yield from directory.iterdir()
    except OSError:  # not there, or not readable: nothing to compare
        return


def fingerprint(roots: Iterable[Path]) -> Fingerprint:
    """Stat the entries of each root and of the site directories in it, not following links."""
    files: dict[str, Stat] = {}
    roots = tuple(roots)
    for root in roots:
        for entry in _entries(root):
            paths = [entry, *(_entries(entry) if entry.name in SITE_DIRS and not entry.is_symlink() else ())]
            for path in paths:
                try:
                    st = path.lstat()
                except OSError:  # removed while listing: absent
                    continue
                files[str(path)] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return Fingerprint(roots, files)
