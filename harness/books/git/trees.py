"""Trees: the candidate tree of an attempt (what ralph would commit), tree entries and the changes between
trees, and exporting a tree for the checks.

ralph never commits `.ralph/`, run outputs, checkpoints, local secrets files or anything over the
size limit, even when the repository's .gitignore would let them in; what was left out is returned
(and named in the commit body) instead of being silently dropped.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import git

from harness.books.git.repo import batched, changed_files, open_repo, scratch_index
from harness.books.layout import GIT_DIR, RALPH_DIR

EXCLUDED_DIRS = frozenset({RALPH_DIR, "runs", "wandb", "checkpoints", GIT_DIR})


EXCLUDED_FILES = ("*.pt", "*.pth", "*.ckpt", "*.safetensors", ".env", ".env.*")


MAX_FILE_BYTES = 5 * 1024 * 1024
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's id of the empty tree (the parent of a first commit)


# One path of a tree: (mode, blob sha), or None where the path does not exist.
TreeEntry = tuple[str, str] | None


def exclusion_reason(repo_root: Path, rel: str, max_file_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Why `rel` must not be committed by ralph, or None when it may be."""
    parts = PurePosixPath(rel).parts
    hit = next((p for p in parts[:-1] if p in EXCLUDED_DIRS), None)
    if hit:
        return f"inside {hit}/ (run outputs and harness state are never committed)"
    if any(fnmatch.fnmatch(parts[-1], g) for g in EXCLUDED_FILES):
        return "checkpoint or secrets file"
    path = repo_root / rel
    if path.is_file() and not path.is_symlink() and path.stat().st_size > max_file_bytes:
        return f"{path.stat().st_size / 1e6:.1f} MB, over the {max_file_bytes / 1e6:.1f} MB limit"
    return None


def stage_changes(repo: git.Repo, max_file_bytes: int = MAX_FILE_BYTES) -> tuple[list[str], list[tuple[str, str]]]:
    """Stage every change ralph may commit and unstage the rest; returns (staged, skipped with reasons)."""
    root = Path(repo.working_tree_dir or ".")
    include, skipped, unstage = [], [], []
    for status, path in changed_files(repo):
        reason = exclusion_reason(root, path, max_file_bytes)
        if reason is None:
            include.append(path)
        else:
            if PurePosixPath(path).parts[0] != RALPH_DIR:  # the harness's own state: not worth reporting
                skipped.append((path, reason))
            if status[0] not in " ?":
                unstage.append(path)
    for chunk in batched(include):
        repo.git.add("-A", "--", *chunk)
    for chunk in batched(unstage):
        if repo.head.is_valid():
            repo.git.reset("-q", "HEAD", "--", *chunk)
        else:
            repo.git.rm("--cached", "-q", "-r", "--", *chunk)
    return include, skipped


@dataclass
class Candidate:
    """The tree ralph would commit now: HEAD plus every change it may commit (see `stage_changes`)."""

    tree: str
    staged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def candidate(repo_path: Path | str, max_file_bytes: int = MAX_FILE_BYTES,
              held: Mapping[str, TreeEntry] | None = None) -> Candidate:
    """The candidate commit's tree for the working tree as it is (written to the object store).

    `held` are the changes of attempts whose checks still run as jobs (path -> their entry): a
    path still exactly as such an attempt left it stays at HEAD's version here, so another
    feature's candidate (and commit) never carries work that has not been verified yet.
    """
    repo = open_repo(repo_path)
    with scratch_index(repo, seeded=True):
        if repo.head.is_valid():
            repo.git.read_tree("--reset", "HEAD")  # HEAD's entries; stats kept where they match (scratch_index)
        else:
            repo.git.read_tree("--empty")
        staged, skipped = stage_changes(repo, max_file_bytes)
        if held:
            kept = [p for p, e in held.items() if _index_entry(repo, p) == e]
            set_entries(repo, {p: _tree_entry(repo, "HEAD", p) for p in kept})
            staged = [p for p in staged if p not in kept]
        return Candidate(repo.git.write_tree(), staged, skipped)


def _index_entry(repo: git.Repo, path: str) -> TreeEntry:
    out = repo.git.ls_files("-s", "--", path)
    if not out:
        return None
    mode, sha, _ = out.split(" ", 2)
    return mode, sha


def _tree_entry(repo: git.Repo, treeish: str, path: str) -> TreeEntry:
    if treeish == "HEAD" and not repo.head.is_valid():
        return None
    out = repo.git.ls_tree(treeish, "--", path)
    if not out:
        return None
    mode, _kind, rest = out.split(" ", 2)
    return mode, rest.split("\t", 1)[0]


def set_entries(repo: git.Repo, entries: Mapping[str, TreeEntry]) -> None:
    """Set paths in the (scratch) index to the given entries; None removes the path."""
    for path, entry in entries.items():
        if entry is None:
            repo.git.update_index("--force-remove", "--", path)
        else:
            repo.git.update_index("--add", "--cacheinfo", f"{entry[0]},{entry[1]},{path}")


def changes_between(repo_path: Path | str, old: str | None, new: str) -> dict[str, TreeEntry]:
    """Every path that differs between the trees `old` (None: empty) and `new`, with its entry in `new`."""
    repo = open_repo(repo_path)
    base = old or repo.git.hash_object("-t", "tree", "/dev/null")
    return {p: _tree_entry(repo, new, p) for p in tree_changes(repo_path, base, new)}


def worktree_entry(repo_path: Path | str, path: str) -> TreeEntry:
    """What `path` in the working tree would be as a tree entry (without writing the blob)."""
    full = Path(repo_path) / path
    if full.is_symlink():
        return "120000", _hash_link(repo_path, full)
    if not full.is_file():
        return None
    mode = "100755" if os.access(full, os.X_OK) else "100644"
    return mode, open_repo(repo_path).git.hash_object("--no-filters", "--", str(full))


def _hash_link(repo_path: Path | str, link: Path) -> str:
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(os.readlink(link))
    try:
        return open_repo(repo_path).git.hash_object("--no-filters", "--", f.name)
    finally:
        os.unlink(f.name)


def export_tree(repo_path: Path | str, tree: str, dest: Path, skip: Iterable[str] = ()) -> None:
    """Write the files of `tree` into the (empty) directory `dest`: a clean checkout with no .git.

    `skip`: paths left out, because the caller writes them itself (the protected files, guards.put_back:
    a long progress.txt is then written once, not twice)."""
    repo = open_repo(repo_path)
    with scratch_index(repo):
        repo.git.read_tree(tree)
        for chunk in batched(list(skip)):
            repo.git.update_index("--force-remove", "--", *chunk)
        repo.git.checkout_index("-a", "-f", f"--prefix={Path(dest).resolve()}/")


def tree_changes(repo_path: Path | str, old: str, new: str) -> list[str]:
    """Paths that differ between two trees."""
    out = open_repo(repo_path).git.diff_tree("-r", "--name-only", "--no-renames", "-z", old, new)
    return [p for p in out.split("\0") if p]
