"""Every path ralph owns in a repository, named once.

Two kinds: the harness's files in the working tree (PRD.json, progress.txt), which ralph writes
between attempts and commits with a verified feature; and `.ralph/`, its private records, which
are never committed. The guards, the commit, recovery, the check tree and the views all take
these names from here.
"""

from __future__ import annotations

from pathlib import Path

RALPH_DIR = ".ralph"  # git-ignored; the agent may not write it (and under bwrap cannot see it)
PLAN_FILE = "PRD.json"
PROGRESS_FILE = "progress.txt"
HARNESS_FILES = (PLAN_FILE, PROGRESS_FILE)  # in the working tree, written by ralph only
CONFIG_FILE = f"{RALPH_DIR}/config.toml"  # the user's local `ralph run` settings (settings.py)
GIT_DIR = ".git"


def ralph_dir(repo: Path | str) -> Path:
    """`<repo>/.ralph/`."""
    return Path(repo) / RALPH_DIR


def state_path(repo: Path | str) -> Path:
    """The ledger: per-feature status, attempts and evidence (ledger.py)."""
    return ralph_dir(repo) / "state.json"


def progress_record_path(repo: Path | str) -> Path:
    """The hash chain of what ralph wrote to progress.txt (progress.py)."""
    return ralph_dir(repo) / "progress.json"


def inflight_path(repo: Path | str) -> Path:
    """The attempt in flight: written before the agent starts, removed when it is recorded (recovery.py)."""
    return ralph_dir(repo) / "attempt.json"


def left_tree_path(repo: Path | str) -> Path:
    """The fingerprint of the tree the last attempt left (not the user's dirty tree)."""
    return ralph_dir(repo) / "left-tree"


def lock_path(repo: Path | str) -> Path:
    """Who holds the repository's lock, for the message (the lock itself is a flock on the directory)."""
    return ralph_dir(repo) / "lock"


def runs_dir(repo: Path | str) -> Path:
    """`.ralph/runs/<timestamp>-<name>/`: prompts, transcripts and check logs."""
    return ralph_dir(repo) / "runs"


def report_path(repo: Path | str) -> Path:
    """Where `ralph report` writes the results page by default."""
    return ralph_dir(repo) / "report" / "index.html"
