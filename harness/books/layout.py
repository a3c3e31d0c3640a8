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


# Inside .ralph/: ralph_dir(repo) / NAME.
STATE = "state.json"  # the ledger: per-feature status, attempts and evidence (ledger.py)
PROGRESS_CHAIN = "progress.json"  # the hash chain of what ralph wrote to progress.txt (progress.py)
IN_FLIGHT = "attempt.json"  # the attempt in flight, until it is recorded (ledger.py, run/recovery.py)
LEFT_TREE = "left-tree"  # the fingerprint of the tree the last attempt left (not the user's dirty tree)
UNVERIFIED = "unverified.json"  # a feature whose verification was interrupted, and the tree it kept (run/loop.py)
LOCK = "lock"  # who holds the repository's lock, for the message (the lock is a flock on the directory)
ATTEMPTS = "attempts.jsonl"  # every judged attempt: verdict, evidence, cost, time, its commit (attempts.py)
PLOTS = "plots"  # plots/<feature>/<n>/: copies of the images an attempt's checks wrote (attempts.py)
RUNS = "runs"  # runs/<timestamp>-<name>/: prompts, transcripts, check logs (Project.log_dir)
REPORT = "report/index.html"  # where `ralph report` writes the results page by default
APPROVALS = "approvals"  # approvals/phase-<id>.request.json: a phase waiting for a person (run/approval.py)
PREFLIGHT = "preflight.jsonl"  # the transcript of the agent CLI's preflight call (agents/command.py)
OPTIMIZE = "optimize"  # optimize/<feature>/: leaderboard.json, the trial in flight, discarded patches, the plot, jobs/


def ralph_dir(repo: Path | str) -> Path:
    """`<repo>/.ralph/`."""
    return Path(repo) / RALPH_DIR
