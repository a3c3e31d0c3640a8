"""The search's refs: a discarded candidate kept under `refs/ralph/discarded/<feature>/<n>` (a commit of its tree
on top of the incumbent it was compared with) and as a patch; the winner tagged `ralph/<feature>/best`.

Nothing is lost: `git diff <incumbent> refs/ralph/discarded/<feature>/<n>` (or the patch) shows what a trial
tried, however it ended. The commits are made with `git commit-tree` (no hooks), like ralph's own.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.books.git.repo import committer_identity, open_repo
from harness.fileio import atomic_write_text

DISCARDED = "refs/ralph/discarded"


def discarded_ref(feature_id: str, n: int) -> str:
    return f"{DISCARDED}/{feature_id}/{n}"


def best_tag(feature_id: str) -> str:
    return f"ralph/{feature_id}/best"


def save_discarded(repo_path: Path | str, feature_id: str, n: int, incumbent: str, tree: str, message: str,
                   patch: Path) -> str:
    """Commit `tree` on `incumbent` as `refs/ralph/discarded/<feature>/<n>` and write its diff to `patch`; returns
    the ref. Safe to repeat (the ref is moved to the new commit)."""
    repo = open_repo(repo_path)
    fd, msg_path = tempfile.mkstemp(prefix="ralph-discard-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(message)
        with committer_identity(repo):
            sha = repo.git.commit_tree(tree, "-p", incumbent, "-F", msg_path)
    finally:
        os.unlink(msg_path)
    ref = discarded_ref(feature_id, n)
    repo.git.update_ref(ref, sha)
    atomic_write_text(patch, repo.git.diff(incumbent, sha, "--binary") + "\n")
    return ref


def tag_best(repo_path: Path | str, feature_id: str, sha: str) -> str:
    """Point the lightweight tag `ralph/<feature>/best` at `sha`; returns the tag's name."""
    open_repo(repo_path).git.update_ref(f"refs/tags/{best_tag(feature_id)}", sha)
    return best_tag(feature_id)


def diff_from(repo_path: Path | str, base: str, head: str = "HEAD", limit: int = 20000) -> str:
    """`git diff base head` (what the incumbent changed since the baseline), cut at `limit` characters."""
    text = open_repo(repo_path).git.diff(base, head, "--stat", "--patch", "--", ".", ":(exclude)PRD.json",
                                         ":(exclude)progress.txt")
    return text if len(text) <= limit else text[:limit] + f"\n… (cut at {limit} characters)"
