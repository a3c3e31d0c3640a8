"""Refs: the ones an attempt may not move (HEAD, the branch, `ralph/*` tags and the kept attempts under
`refs/ralph/`; commits the agent adds on the branch are folded back into its working tree), and the phase
approval tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from harness.books.git.repo import VCSError, committer_identity, open_repo

RALPH_TAGS = "refs/tags/ralph/"
RALPH_REFS = "refs/ralph/"  # ralph's own refs outside tags: kept attempts (kept.py)


@dataclass(frozen=True)
class Refs:
    """HEAD (the branch it names, or "" when detached), the branch's commit and ralph's tags and refs
    (`tags`: ref name -> sha, for `refs/tags/ralph/` and `refs/ralph/`)."""

    head: str
    sha: str | None
    tags: dict[str, str]

    def to_json(self) -> dict:
        return {"head": self.head, "sha": self.sha, "tags": self.tags}

    @classmethod
    def from_json(cls, data: dict) -> Refs:
        return cls(data["head"], data["sha"], dict(data["tags"]))


def read_refs(repo_path: Path | str) -> Refs:
    repo = open_repo(repo_path)
    head = "" if repo.head.is_detached else repo.git.symbolic_ref("HEAD")
    sha = repo.head.commit.hexsha if repo.head.is_valid() else None
    listed = repo.git.for_each_ref("--format=%(refname) %(objectname)", RALPH_TAGS.rstrip("/"), RALPH_REFS.rstrip("/"))
    tags = dict(line.split(" ", 1) for line in listed.splitlines() if line)
    return Refs(head, sha, tags)


def _is_ancestor(repo: git.Repo, old: str, new: str) -> bool:
    try:
        repo.git.merge_base("--is-ancestor", old, new)
        return True
    except git.GitCommandError:
        return False


def check_refs(repo_path: Path | str, before: Refs) -> tuple[list[str], int]:
    """Put HEAD, the branch and ralph's tags back as they were; returns (moved refs, folded commits).

    Commits the agent added on top of the branch are folded: the branch goes back to where it was
    and their changes stay in the working tree, to be judged and committed by ralph. Any other
    move (a reset, a rewrite, a switched or detached HEAD, a tag) is tampering and is undone.
    """
    repo = open_repo(repo_path)
    now = read_refs(repo_path)
    moved: list[str] = []
    folded = 0
    if now.head != before.head:
        moved.append("HEAD")
        if before.head:
            repo.git.symbolic_ref("HEAD", before.head)
        elif before.sha:
            repo.git.update_ref("--no-deref", "HEAD", before.sha)
    branch_now = read_refs(repo_path).sha
    if branch_now != before.sha:
        if before.sha and branch_now and _is_ancestor(repo, before.sha, branch_now):
            folded = int(repo.git.rev_list("--count", f"{before.sha}..{branch_now}"))
        elif branch_now:  # a rewrite (an amend, a rebase, someone else's commit): say where it went, nothing is lost
            moved.append(f"{before.head or 'HEAD'} (moved to {branch_now[:12]}, which git's reflog keeps: "
                         f"`git branch recovered {branch_now[:12]}` gets it back)")
        else:
            moved.append(before.head or "HEAD")
        if before.sha:
            repo.git.update_ref(before.head or "HEAD", before.sha)
            repo.git.read_tree(before.sha)  # index back to the start; the working tree keeps the agent's work
        elif before.head:
            repo.git.update_ref("-d", before.head)
            repo.git.read_tree("--empty")
    for ref in sorted(before.tags.keys() | now.tags.keys()):
        if before.tags.get(ref) != now.tags.get(ref):
            moved.append(ref)
            if ref in before.tags:
                repo.git.update_ref(ref, before.tags[ref])
            else:
                repo.git.update_ref("-d", ref)
    return moved, folded


def phase_tag(phase_id: int, decision: str) -> str:
    return f"ralph/phase-{phase_id}-{decision}"


def _tag_phase(repo_path: Path | str, phase_id: int, decision: str, message: str) -> str:
    """Annotated tag at HEAD for a phase decision; the opposite decision's tag is removed."""
    repo = open_repo(repo_path)
    if not repo.head.is_valid():
        raise VCSError("the repository has no commits yet, so there is nothing to tag; commit first")
    name = phase_tag(phase_id, decision)
    other = phase_tag(phase_id, "rejected" if decision == "approved" else "approved")
    with committer_identity(repo):
        repo.create_tag(name, ref="HEAD", message=message or name, force=True)
    if other in repo.tags:
        repo.delete_tag(repo.tags[other])
    return name


def tag_phase_approved(repo_path: Path | str, phase_id: int, message: str = "") -> str:
    return _tag_phase(repo_path, phase_id, "approved", message)


def tag_phase_rejected(repo_path: Path | str, phase_id: int, message: str = "") -> str:
    return _tag_phase(repo_path, phase_id, "rejected", message)


def on_branch(repo_path: Path | str, sha: str, tree: str) -> bool:
    """True when commit `sha` exists with tree `tree` and is HEAD or one of its ancestors."""
    repo = open_repo(repo_path)
    try:
        return repo.commit(sha).tree.hexsha == tree and repo.head.is_valid() and _is_ancestor(repo, sha, "HEAD")
    except (ValueError, git.BadName, git.GitCommandError):
        return False
