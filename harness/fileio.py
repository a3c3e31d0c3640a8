"""Crash-safe file writes, timestamps and clipped text, shared by the harness records."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves either the old or the new file, never half of one.

    Temp file in the same directory, fsync, rename, then fsync the directory so the rename is durable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else _default_mode())  # mkstemp makes 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _default_mode() -> int:
    """What `open(path, "w")` would give a new file: 0666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def now_iso() -> str:
    """UTC timestamp, second precision, e.g. 2026-11-21T08:43:18Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Terminal control sequences (CSI, OSC, other escapes) and control characters other than tab and newline:
# an agent's text printed with them could clear the screen, retitle the window or paint a fake verdict.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def is_virtualenv(path: Path) -> bool:
    """True when `path` is a Python virtual environment (it holds `pyvenv.cfg`)."""
    return (Path(path) / "pyvenv.cfg").is_file()


ENVIRONMENT_DIRS = frozenset({"site-packages", "node_modules", "__pypackages__"})


def environment_root(repo: Path, rel: str) -> str | None:
    """The environment `rel` lies in, relative to `repo` (a virtual environment: `pyvenv.cfg`; a conda one:
    `conda-meta/`; a `site-packages` or `node_modules` tree), or None."""
    parts = Path(rel).parts
    for i in range(1, len(parts)):
        folder = repo.joinpath(*parts[:i])
        if parts[i - 1] in ENVIRONMENT_DIRS or is_virtualenv(folder) or (folder / "conda-meta").is_dir():
            return "/".join(parts[:i]) + "/"
    return None


def printable(text: str) -> str:
    """`text` without terminal control sequences and control characters (tabs and newlines stay)."""
    return _CONTROL.sub("", text)


def clip(text: str, limit: int, keep: str = "head") -> str:
    """`text` cut to `limit` characters, keeping the head or the tail, with a visible marker."""
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} characters cut ...]\n"
    return text[: limit - len(marker)] + marker if keep == "head" else marker + text[-(limit - len(marker)) :]
