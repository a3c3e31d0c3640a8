"""Which code produced a result: the git commit, also inside `ralph verify`'s clean checkout.

`ralph verify` runs its checks on an exported copy of the tree it would commit, which has no
`.git`; it tells the commands the HEAD it started from and the exact tree it checked (RALPH_HEAD,
RALPH_TREE; the tree holds the uncommitted changes too), and those answer there.
"""

from __future__ import annotations

import os


def code_version() -> dict[str, str | None]:
    """{"git_sha": HEAD of the repository around the working directory ("-dirty" when tracked files
    have edits) or RALPH_HEAD outside one (None when neither), "git_tree": RALPH_TREE or None}."""
    import git

    tree = os.environ.get("RALPH_TREE") or None
    try:
        repo = git.Repo(search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return {"git_sha": os.environ.get("RALPH_HEAD") or None, "git_tree": tree}
    if not repo.head.is_valid():  # a repository without commits yet
        return {"git_sha": None, "git_tree": tree}
    return {"git_sha": repo.head.commit.hexsha + ("-dirty" if repo.is_dirty(untracked_files=False) else ""),
            "git_tree": tree}
