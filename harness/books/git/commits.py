"""Commits: one per verified feature, made with `git commit-tree` (no hooks run), with `Ralph-*` trailers;
the commit of a job-verified feature (HEAD plus exactly its recorded changes)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import git
from git.util import hex_to_bin

from harness.books.git.repo import VCSError, batched, committer_identity, open_repo, require_branch, scratch_index
from harness.books.git.trees import (
    EMPTY_TREE,
    MAX_FILE_BYTES,
    Candidate,
    TreeEntry,
    candidate,
    exclusion_reason,
    set_entries,
    tree_changes,
    worktree_entry,
)
from harness.books.layout import HARNESS_FILES
from harness.books.records import Evidence, comparisons, headline_metrics, report_values
from harness.plan.prd import Feature
from harness.secrets import credential_in


@dataclass
class CommitResult:
    sha: str
    committed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _trailer_value(text: str) -> str:
    return " ".join(text.replace(",", ";").split())


def commit_message(feature: Feature, attempt: int, evidence: list[Evidence], metrics: dict[str, float],
                   skipped: list[tuple[str, str]], subject: str | None = None) -> str:
    lines = [subject or f"feat({feature.id}): {' '.join(feature.title.split())}", ""]
    lines.append(f"Verified by ralph (attempt {attempt}); checks run by the harness:")
    lines += [f"- {e.check}: {e.verdict}, {' '.join(e.detail.split())}" for e in evidence]
    if skipped:
        lines += ["", "Not committed (ralph policy):"] + [f"- {p}: {why}" for p, why in skipped]
    checks = ", ".join(f"{_trailer_value(e.check)}={e.verdict}" for e in evidence) or "none"
    figures = ", ".join(f"{_trailer_value(k)}={v:.6g}" for k, v in metrics.items()) or "none"
    lines += ["", f"Ralph-Feature: {feature.id}", f"Ralph-Attempt: {attempt}",
              f"Ralph-Checks: {checks}", f"Ralph-Metrics: {figures}"]
    lines += [f"Ralph-Comparison: {_trailer_value(line)}" for line in comparison_lines(evidence)]
    lines += [f"Ralph-Report: {_trailer_value(v.text())}" for v in report_values(evidence)]
    return "\n".join(lines) + "\n"


def comparison_lines(evidence: Iterable[Evidence]) -> list[str]:
    """'<check>: a - b = …, 90% CI […], p = … (<test>, n = …)' for each comparison that was tested, and for each
    confirmation on fresh seeds ('<check> (fresh seeds 5, 6, 7): …')."""
    return [f"{label}: {found.summary()}" for label, _, found in comparisons(evidence)]


def refuse_credentials(repo: git.Repo, feature_id: str, tree: str) -> None:
    """Raise VCSError naming the file when a file `tree` adds or changes (against HEAD) holds a credential:
    an agent that copied ~/.ssh or ~/.aws into the repository does not get them into history."""
    base = repo.head.commit.tree.hexsha if repo.head.is_valid() else EMPTY_TREE
    root = git.Tree(repo, hex_to_bin(tree), path="")  # a root tree with a path, so that paths resolve
    for path in tree_changes(repo.working_tree_dir, base, tree):
        try:
            blob = root[path]
        except KeyError:  # deleted
            continue
        if blob.type == "blob" and blob.size <= MAX_FILE_BYTES:
            kind = credential_in(blob.data_stream.read())
            if kind:
                raise VCSError(f"not committing {feature_id}: {path} holds what looks like {kind}; ralph never "
                               "commits credentials. Remove the file (and rotate the credential if it is real)")


def _commit(repo: git.Repo, tree: str, message: str, before_move: Callable[[str, str], None] | None = None) -> str:
    """Commit `tree` on the current branch with `git commit-tree` (no hooks) and move the branch.
    `before_move(sha, tree)` runs between the two: ralph records which commit is its own first."""
    branch = repo.git.symbolic_ref("HEAD")
    parent = repo.head.commit.hexsha if repo.head.is_valid() else None
    fd, msg_path = tempfile.mkstemp(prefix="ralph-commit-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(message)
        with committer_identity(repo):
            sha = repo.git.commit_tree(tree, *(["-p", parent] if parent else []), "-F", msg_path)
        if before_move is not None:
            before_move(sha, tree)
        repo.git.update_ref(branch, sha, *([parent] if parent else []))
        repo.git.read_tree(sha)  # the index follows the new commit; the working tree is untouched
    finally:
        os.unlink(msg_path)
    return sha


def commit_worktree(repo_path: Path | str, message: str) -> CommitResult:
    """Commit the working tree as it is (the user's own changes, `ralph run --allow-dirty`)."""
    repo = open_repo(repo_path)
    require_branch(repo)
    now = candidate(repo_path)
    try:
        return CommitResult(_commit(repo, now.tree, message), now.staged, now.skipped)
    except git.GitCommandError as e:
        raise VCSError(f"git commit failed: {(e.stderr or e.stdout or str(e)).strip()}") from None


def commit_files(repo_path: Path | str, paths: Iterable[str], message: str) -> str:
    """Commit `paths` as they are in the working tree, on top of HEAD and nothing else (the user's edit to the
    plan, before an agent's first attempt); returns the commit's sha."""
    repo = open_repo(repo_path)
    require_branch(repo)
    try:
        with scratch_index(repo):
            if repo.head.is_valid():
                repo.git.read_tree("HEAD")
            repo.git.add("--", *paths)
            tree = repo.git.write_tree()
        return _commit(repo, tree, message)
    except git.GitCommandError as e:
        raise VCSError(f"git commit failed: {(e.stderr or e.stdout or str(e)).strip()}") from None


def commit_feature(
    repo_path: Path | str,
    feature: Feature,
    attempt: int,
    evidence: list[Evidence],
    metrics: dict[str, float] | None = None,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    verified: Candidate | None = None,
    outputs: Iterable[str] = (),
    held: Mapping[str, TreeEntry] | None = None,
    before_move: Callable[[str, str], None] | None = None,
    subject: str | None = None,
) -> CommitResult:
    """Commit the working tree for a verified feature: `feat(<ID>): <title>` (or `subject`) plus Ralph-* trailers.

    With `verified` (the candidate the checks ran on), the tree committed may differ from it only
    in `outputs` (what the checks wrote, and PRD.json / progress.txt); anything else changed after
    verification raises `VCSError` and nothing is committed. Works on an unborn branch (first
    commit); records an empty commit when nothing changed, so every verification that passed has
    its commit. Raises `VCSError` on a detached HEAD. `held`: see `candidate`; `before_move`: see `_commit`.
    """
    repo = open_repo(repo_path)
    require_branch(repo)
    now = candidate(repo_path, max_file_bytes, held)
    if verified is not None:
        allowed = {*outputs, "PRD.json", "progress.txt"}
        unverified = [p for p in tree_changes(repo_path, verified.tree, now.tree) if p not in allowed]
        if unverified:
            raise VCSError(f"not committing {feature.id}: {', '.join(unverified[:10])} changed after the checks ran")
    refuse_credentials(repo, feature.id, now.tree)
    msg = commit_message(feature, attempt, evidence, headline_metrics(evidence) if metrics is None else metrics,
                         now.skipped, subject)
    try:
        sha = _commit(repo, now.tree, msg, before_move)
    except git.GitCommandError as e:
        raise VCSError(f"git commit failed for {feature.id}: {(e.stderr or e.stdout or str(e)).strip()}") from None
    return CommitResult(sha=sha, committed=now.staged, skipped=now.skipped)


def commit_held(repo_path: Path | str, feature: Feature, attempt: int, evidence: list[Evidence],
                changes: Mapping[str, TreeEntry], outputs: Iterable[str]) -> CommitResult:
    """Commit a feature verified by jobs: HEAD's tree plus exactly the attempt's recorded `changes`
    and the files that came back (`outputs`, with PRD.json and progress.txt), except those ralph never commits
    (`exclusion_reason`) or .gitignore ignores (`runs/`), which are named as left out. Other uncommitted work
    in the tree stays uncommitted. Raises `VCSError` when one of the attempt's paths is no longer as
    it was verified (changed while its jobs ran)."""
    repo = open_repo(repo_path)
    require_branch(repo)
    moved = [p for p, e in changes.items() if worktree_entry(repo_path, p) != e]
    if moved:
        raise VCSError(f"not committing {feature.id}: {', '.join(sorted(moved)[:10])} changed while its jobs ran")
    root = Path(repo_path)
    returned = [p for p in dict.fromkeys(outputs) if p not in HARNESS_FILES and (root / p).is_file()]
    skipped = [(p, reason) for p in returned if (reason := exclusion_reason(root, p))]
    kept = [p for p in returned if p not in dict(skipped)]
    ignored = set(repo.git.check_ignore("--", *kept, with_exceptions=False).splitlines()) if kept else set()
    skipped += [(p, "ignored by .gitignore") for p in kept if p in ignored]  # issue 24: runs/ was committed
    extra = [p for p in kept if p not in ignored]
    harness = [p for p in HARNESS_FILES if (root / p).is_file()]
    with scratch_index(repo):
        if repo.head.is_valid():
            repo.git.read_tree("HEAD")
        set_entries(repo, changes)
        for chunk in batched(extra):
            repo.git.add("--", *chunk)
        if harness:
            repo.git.add("-f", "--", *harness)  # ralph's records, whatever .gitignore says
        tree = repo.git.write_tree()
    refuse_credentials(repo, feature.id, tree)
    msg = commit_message(feature, attempt, evidence, headline_metrics(evidence), skipped)
    try:
        sha = _commit(repo, tree, msg)
    except git.GitCommandError as e:
        raise VCSError(f"git commit failed for {feature.id}: {(e.stderr or e.stdout or str(e)).strip()}") from None
    return CommitResult(sha=sha, committed=sorted({*changes, *extra, *harness}), skipped=skipped)
