"""Every attempt's tree stays in git: a failed attempt's is kept as a commit under `refs/ralph/attempts/`
(a passing one is ralph's own commit on the branch), and `attempt_diff` reads what an attempt changed.

A kept commit is never on a branch: `git show <sha>` or `git switch -c retry <sha>` brings a failed
attempt back. The ref only keeps git's garbage collection off it; ralph's records name the commit by
its sha (`books/attempts.py`), so moving the ref cannot change what a record shows. The refs are
guarded like ralph's tags (refs.py: an attempt that moves one is tampering, and it is put back).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from harness.books.git.commits import refuse_credentials
from harness.books.git.refs import RALPH_REFS
from harness.books.git.repo import VCSError, committer_identity, open_repo
from harness.books.layout import HARNESS_FILES

ATTEMPT_REFS = f"{RALPH_REFS}attempts/"
DIFF_BYTES = 200_000  # of an attempt's patch read back by the views; the stat line always counts all of it


def attempt_ref(repo: git.Repo, feature_id: str, number: int) -> str:
    """`refs/ralph/attempts/<feature>/<n>`; a feature id git refuses in a ref name (`A..B`) is hex-encoded."""
    ref = f"{ATTEMPT_REFS}{feature_id}/{number}"
    try:
        repo.git.check_ref_format(ref)
    except git.GitCommandError:
        ref = f"{ATTEMPT_REFS}id-{feature_id.encode().hex()}/{number}"
    return ref


def keep_attempt(repo_path: Path | str, feature_id: str, number: int, tree: str, base: str | None) -> str:
    """Commit `tree` (the attempt's candidate tree) on top of `base`, off every branch, and point the attempt's
    ref at it; returns the commit's sha. Raises `VCSError` when git refuses, or when the tree adds a credential
    (ralph never makes one reachable in history, kept or not)."""
    repo = open_repo(repo_path)
    try:
        refuse_credentials(repo, feature_id, tree)
        fd, msg_path = tempfile.mkstemp(prefix="ralph-kept-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"ralph: {feature_id} attempt {number} (kept by ralph; not verified, on no branch)\n")
            with committer_identity(repo):
                sha = repo.git.commit_tree(tree, *(["-p", base] if base else []), "-F", msg_path)
        finally:
            os.unlink(msg_path)
        repo.git.update_ref(attempt_ref(repo, feature_id, number), sha)
    except git.GitCommandError as e:
        raise VCSError(f"git could not keep {feature_id} attempt {number}: {(e.stderr or str(e)).strip()}") from None
    return sha


@dataclass(frozen=True)
class Diff:
    """What an attempt changed against the commit it started from: `stat` (git's --stat summary), `patch` (cut
    at `limit` bytes when `cut`), or `missing` saying why there is none."""

    stat: str = ""
    patch: str = ""
    cut: bool = False
    missing: str | None = None


def attempt_diff(repo_path: Path | str, base: str | None, commit: str | None, limit: int = DIFF_BYTES) -> Diff:
    """The patch from `base` to `commit`, read through plumbing (`diff-tree`, no external diff drivers or
    textconv filters, which the repository's attributes could name), at most `limit` bytes of it. PRD.json and
    progress.txt are left out: ralph writes them, not the attempt."""
    if not commit:
        return Diff(missing="no tree was recorded for this attempt")
    repo = open_repo(repo_path)
    try:
        repo.git.cat_file("-e", f"{commit}^{{commit}}")
        revs = [base, commit] if base else ["--root", commit]
        args = ["--no-ext-diff", "--no-textconv", "--no-color", "-r", "-M", *revs, "--", ".",
                *(f":(exclude,top){name}" for name in HARNESS_FILES)]
        stat = repo.git.diff_tree("--stat=100", "--summary", *args)
        # Streamed and cut: an attempt may add many large files, and only `limit` bytes are ever shown.
        proc = repo.git.diff_tree("-p", *args, as_process=True)
        try:
            raw = proc.stdout.read(limit + 1)
        finally:
            proc.proc.kill()
            proc.proc.wait()
    except git.GitCommandError:
        return Diff(missing=f"commit {commit[:10]} is not in this repository (pruned, or another clone)")
    return Diff(stat=stat.strip(), patch=raw[:limit].decode("utf-8", "replace"), cut=len(raw) > limit)
