"""Git records through GitPython: one commit per verified feature with trailers, phase tags,
and path snapshots the loop uses to detect and undo edits to protected files.

Commits never include `.ralph/`, run outputs, checkpoints, local secrets files or anything over
the size limit, even when the repository's .gitignore would let them in; what was left out is
returned (and named in the commit body) instead of being silently dropped.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import git

from harness.checks import Evidence
from harness.errors import RalphError
from harness.fileio import sha256_file
from harness.prd import Feature

EXCLUDED_DIRS = frozenset({".ralph", "runs", "wandb", "checkpoints", ".git"})
EXCLUDED_FILES = ("*.pt", "*.pth", "*.ckpt", "*.safetensors", ".env", ".env.*")
MAX_FILE_BYTES = 5 * 1024 * 1024
_BATCH = 200  # paths per git invocation, to stay under the OS argument limit


class VCSError(RalphError):
    """The repository is not in a state ralph can record into."""


@dataclass
class CommitResult:
    sha: str
    committed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def open_repo(path: Path | str) -> git.Repo:
    try:
        return git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise VCSError(f"{path} is not a git repository; run `git init` there (or `ralph init`, which does)") from None


def head_sha(repo_path: Path | str) -> str | None:
    """HEAD's commit sha, or None in a repository with no commits yet."""
    repo = open_repo(repo_path)
    return repo.head.commit.hexsha if repo.head.is_valid() else None


def require_branch(repo: git.Repo) -> None:
    """Raise `VCSError` unless HEAD is on a branch (an unborn one is fine)."""
    if repo.head.is_detached:
        raise VCSError(
            f"HEAD is detached (at {repo.head.commit.hexsha[:10]}), so a commit would belong to no branch. "
            "Switch to a branch first: `git switch <branch>` or `git switch -c ralph/work`."
        )


@contextlib.contextmanager
def _identity(repo: git.Repo) -> Iterator[None]:
    """Commit/tag as the configured user; as `ralph` only when no identity is configured at all."""
    reader = repo.config_reader()
    env = {}
    if not reader.get_value("user", "name", default="") and "GIT_AUTHOR_NAME" not in os.environ:
        env.update(GIT_AUTHOR_NAME="ralph", GIT_COMMITTER_NAME="ralph")
    if not reader.get_value("user", "email", default="") and "GIT_AUTHOR_EMAIL" not in os.environ:
        env.update(GIT_AUTHOR_EMAIL="ralph@localhost", GIT_COMMITTER_EMAIL="ralph@localhost")
    with repo.git.custom_environment(**env):
        yield


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


def changed_files(repo: git.Repo) -> list[tuple[str, str]]:
    """(XY status, path) for every change against HEAD: staged, unstaged and untracked."""
    out = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all")
    items = out.split("\0")
    result = []
    i = 0
    while i < len(items):
        entry = items[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":
            i += 1  # the rename's source path follows
        result.append((status, path))
    return result


def _batched(paths: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(paths), _BATCH):
        yield paths[i : i + _BATCH]


def stage_changes(repo: git.Repo, max_file_bytes: int = MAX_FILE_BYTES) -> tuple[list[str], list[tuple[str, str]]]:
    """Stage every change ralph may commit and unstage the rest; returns (staged, skipped with reasons)."""
    root = Path(repo.working_tree_dir or ".")
    include, skipped, unstage = [], [], []
    for status, path in changed_files(repo):
        reason = exclusion_reason(root, path, max_file_bytes)
        if reason is None:
            include.append(path)
        else:
            if PurePosixPath(path).parts[0] != ".ralph":  # the harness's own state: not worth reporting
                skipped.append((path, reason))
            if status[0] not in " ?":
                unstage.append(path)
    for chunk in _batched(include):
        repo.git.add("-A", "--", *chunk)
    for chunk in _batched(unstage):
        if repo.head.is_valid():
            repo.git.reset("-q", "HEAD", "--", *chunk)
        else:
            repo.git.rm("--cached", "-q", "-r", "--", *chunk)
    return include, skipped


def _trailer_value(text: str) -> str:
    return " ".join(text.replace(",", ";").split())


def commit_message(feature: Feature, attempt: int, evidence: list[Evidence], metrics: dict[str, float],
                   skipped: list[tuple[str, str]]) -> str:
    lines = [f"feat({feature.id}): {' '.join(feature.title.split())}", ""]
    lines.append(f"Verified by ralph (attempt {attempt}); checks run by the harness:")
    lines += [f"- {e.check}: {e.verdict}, {' '.join(e.detail.split())}" for e in evidence]
    if skipped:
        lines += ["", "Not committed (ralph policy):"] + [f"- {p}: {why}" for p, why in skipped]
    checks = ", ".join(f"{_trailer_value(e.check)}={e.verdict}" for e in evidence) or "none"
    figures = ", ".join(f"{_trailer_value(k)}={v:.6g}" for k, v in metrics.items()) or "none"
    lines += ["", f"Ralph-Feature: {feature.id}", f"Ralph-Attempt: {attempt}",
              f"Ralph-Checks: {checks}", f"Ralph-Metrics: {figures}"]
    return "\n".join(lines) + "\n"


def headline_metrics(evidence: Iterable[Evidence]) -> dict[str, float]:
    """Figures from metric checks, without the per-seed values (those stay in state.json)."""
    return {k: v for e in evidence for k, v in e.figures.items() if "[seed=" not in k}


def commit_feature(
    repo_path: Path | str,
    feature: Feature,
    attempt: int,
    evidence: list[Evidence],
    metrics: dict[str, float] | None = None,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> CommitResult:
    """Commit the working tree for a verified feature: `feat(<ID>): <title>` plus Ralph-* trailers.

    Works on an unborn branch (first commit); records an empty commit when nothing changed, so
    every verification that passed has its commit. Raises `VCSError` on a detached HEAD.
    """
    repo = open_repo(repo_path)
    require_branch(repo)
    staged, skipped = stage_changes(repo, max_file_bytes)
    msg = commit_message(feature, attempt, evidence, headline_metrics(evidence) if metrics is None else metrics,
                         skipped)
    fd, msg_path = tempfile.mkstemp(prefix="ralph-commit-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(msg)
        with _identity(repo):
            repo.git.commit("-q", "--allow-empty", "--no-edit", "--cleanup=verbatim", "-F", msg_path)
    except git.GitCommandError as e:
        raise VCSError(f"git commit failed for {feature.id}: {(e.stderr or e.stdout or str(e)).strip()}") from None
    finally:
        os.unlink(msg_path)
    return CommitResult(sha=repo.head.commit.hexsha, committed=staged, skipped=skipped)


def phase_tag(phase_id: int, decision: str) -> str:
    return f"ralph/phase-{phase_id}-{decision}"


def _tag_phase(repo_path: Path | str, phase_id: int, decision: str, message: str) -> str:
    """Annotated tag at HEAD for a phase decision; the opposite decision's tag is removed."""
    repo = open_repo(repo_path)
    if not repo.head.is_valid():
        raise VCSError("the repository has no commits yet, so there is nothing to tag; commit first")
    name = phase_tag(phase_id, decision)
    other = phase_tag(phase_id, "rejected" if decision == "approved" else "approved")
    with _identity(repo):
        repo.create_tag(name, ref="HEAD", message=message or name, force=True)
    if other in repo.tags:
        repo.delete_tag(repo.tags[other])
    return name


def tag_phase_approved(repo_path: Path | str, phase_id: int, message: str = "") -> str:
    return _tag_phase(repo_path, phase_id, "approved", message)


def tag_phase_rejected(repo_path: Path | str, phase_id: int, message: str = "") -> str:
    return _tag_phase(repo_path, phase_id, "rejected", message)


# ---------------------------------------------------------------- protected-path snapshots


def snapshot_paths(repo_path: Path | str, globs: Iterable[str]) -> dict[str, str]:
    """{relative path: sha256} of the files matching `globs` (a matched directory means its files)."""
    root = Path(repo_path)
    out: dict[str, str] = {}
    for pattern in globs:
        for hit in root.glob(pattern):
            for f in [hit] if hit.is_file() else (p for p in hit.rglob("*") if p.is_file()):
                if ".git" not in f.relative_to(root).parts:
                    out[f.relative_to(root).as_posix()] = sha256_file(f)
    return out


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or modified between two snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def restore_paths(repo_path: Path | str, paths: Iterable[str], ref: str = "HEAD") -> None:
    """Put `paths` back as they are in `ref`; paths that `ref` does not have are deleted."""
    repo = open_repo(repo_path)
    root = Path(repo.working_tree_dir or ".")
    tracked = set(repo.git.ls_tree("-r", "--name-only", ref).splitlines()) if repo.head.is_valid() else set()
    present = [p for p in paths if p in tracked]
    for chunk in _batched(present):
        repo.git.checkout(ref, "--", *chunk)
    for p in paths:
        if p not in tracked:
            (root / p).unlink(missing_ok=True)
