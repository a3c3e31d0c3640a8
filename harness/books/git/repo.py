"""Opening the repository so that no git command of ralph's runs code the agent could have planted, and
what the working tree holds.

ralph's own git commands run with hooks off (`core.hooksPath=/dev/null`), fsmonitor and signing off,
the global and system config files unread (writable by an unsandboxed agent; they can define filters
and helpers) and credentials blanked from git's environment. The repository's own `.git/config` is one
of the guarded paths (sandbox/guards.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.books.layout import GIT_DIR, HARNESS_FILES, RALPH_DIR
from harness.errors import RalphError
from harness.fileio import sha256_file
from harness.secrets import is_secret

if TYPE_CHECKING:  # GitPython takes ~0.1 s to import: read-only commands (`ralph status`) use git itself
    import git


class VCSError(RalphError):
    """The repository is not in a state ralph can record into."""


# `-c` overrides for every git command ralph runs (GIT_CONFIG_COUNT beats every config file).
SAFE_CONFIG = {"core.hooksPath": "/dev/null", "core.fsmonitor": "false", "commit.gpgSign": "false",
               "tag.gpgSign": "false", "core.pager": "cat"}


_BATCH = 200  # paths per git invocation, to stay under the OS argument limit


def safe_git_env() -> dict[str, str]:
    """Environment for ralph's git commands: config overrides that disable everything that executes."""
    env = {k: "" for k in os.environ if is_secret(k)}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               GIT_CONFIG_COUNT=str(len(SAFE_CONFIG)))
    for i, (key, value) in enumerate(SAFE_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def not_a_repository(path: Path | str) -> VCSError:
    return VCSError(f"{path} is not a git repository; run `git init` there (or `ralph init`, which does)")


def open_repo(path: Path | str) -> git.Repo:
    import git

    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise not_a_repository(path) from None
    repo.git.update_environment(**safe_git_env())
    return repo


def _rev_parse(repo_path: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    """`git rev-parse ARGS` in `repo_path` with ralph's safe environment (no GitPython: see `require_repository`)."""
    try:
        return subprocess.run(["git", "rev-parse", *args], cwd=repo_path, env={**os.environ, **safe_git_env()},
                              capture_output=True, text=True, check=False)
    except (FileNotFoundError, NotADirectoryError):  # no such directory (git itself is a dependency of ralph)
        return subprocess.CompletedProcess(args, 128, "", "")


def git_common_dir(root: Path | str) -> Path | None:
    """The git directory every worktree of the repository at `root` shares, or None outside a repository."""
    done = _rev_parse(root, "--path-format=absolute", "--git-common-dir")
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 and done.stdout.strip() else None


def worktrees(root: Path | str) -> list[Path]:
    """Every worktree of the repository at `root` (`git worktree list`), itself included; [] when git cannot say."""
    try:
        done = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=root, capture_output=True, text=True,
                              env={**os.environ, **safe_git_env()}, check=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [Path(line.removeprefix("worktree ")) for line in done.stdout.splitlines() if line.startswith("worktree ")]


def require_repository(path: Path | str) -> None:
    """Raise `VCSError` unless `path` is the top of a git work tree (what `open_repo` accepts), without loading
    GitPython: the read-only commands start in a fraction of the time (scripts/bench_startup.py)."""
    done = _rev_parse(path, "--show-toplevel")
    if done.returncode != 0 or Path(done.stdout.strip()).resolve() != Path(path).resolve():
        raise not_a_repository(path)


def committed_text(repo_path: Path | str, rel: str) -> str | None:
    """The file `rel` as committed at HEAD, or None (not a repository, no commit yet, or not tracked)."""
    try:
        done = subprocess.run(["git", "cat-file", "blob", f"HEAD:{rel}"], cwd=repo_path, capture_output=True,
                              env={**os.environ, **safe_git_env()}, check=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None


def head_sha(repo_path: Path | str) -> str | None:
    """HEAD's commit sha, or None in a repository with no commits yet."""
    done = _rev_parse(repo_path, "--verify", "--quiet", "HEAD^{commit}")
    if done.returncode == 0:
        return done.stdout.strip()
    require_repository(repo_path)  # an unborn HEAD, unless this is no repository at all
    return None


def require_branch(repo: git.Repo) -> None:
    """Raise `VCSError` unless HEAD is on a branch (an unborn one is fine)."""
    if repo.head.is_detached:
        raise VCSError(
            f"HEAD is detached (at {repo.head.commit.hexsha[:10]}), so a commit would belong to no branch. "
            "Switch to a branch first: `git switch <branch>` or `git switch -c ralph/work`."
        )


@contextlib.contextmanager
def committer_identity(repo: git.Repo) -> Iterator[None]:
    """Commit/tag as the configured user (read here, since git itself skips the global config);
    as `ralph` only when no identity is configured at all."""
    reader = repo.config_reader()
    name = os.environ.get("GIT_AUTHOR_NAME") or str(reader.get_value("user", "name", default="")) or "ralph"
    email = os.environ.get("GIT_AUTHOR_EMAIL") or str(reader.get_value("user", "email", default="")) \
        or "ralph@localhost"
    env = dict(GIT_AUTHOR_NAME=name, GIT_COMMITTER_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_EMAIL=email)
    with repo.git.custom_environment(**env):
        yield


def batched(paths: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(paths), _BATCH):
        yield paths[i : i + _BATCH]


@contextlib.contextmanager
def scratch_index(repo: git.Repo, *, seeded: bool = False) -> Iterator[None]:
    """Run the block's git commands against a temporary index; the repository's own is untouched.

    `seeded` starts it as a copy of the repository's index after refreshing that one's cached file stats
    (`update-index --refresh`, what `git status` does anyway), so that `read-tree --reset HEAD` keeps
    the stats of every file still as committed and `git status` re-reads only files that changed since:
    without them it hashes the whole working tree, a long progress.txt included, every time.
    """
    with tempfile.TemporaryDirectory(prefix="ralph-index-") as tmp:
        index = Path(tmp) / "index"
        if seeded:
            repo.git.update_index("-q", "--refresh", with_exceptions=False)  # exit 1 just means "changes"
            own = Path(repo.git_dir) / "index"
            if own.is_file():
                index.write_bytes(own.read_bytes())
        with repo.git.custom_environment(GIT_INDEX_FILE=str(index)):
            yield


def ignored_dirs(repo_path: Path | str) -> list[str]:
    """Top-level directories git ignores entirely (datasets, caches, run outputs, a venv), but not .ralph."""
    out = open_repo(repo_path).git.ls_files("--others", "--ignored", "--exclude-standard", "--directory", "-z")
    dirs = {p.rstrip("/") for p in out.split("\0") if p.endswith("/") and p.count("/") == 1}
    return sorted(dirs - {RALPH_DIR, GIT_DIR})


def tree_fingerprint(repo: Path) -> str:
    """Hash of every tracked and untracked, non-ignored file, except the harness's own records.

    Two equal fingerprints around an attempt mean the agent changed nothing.
    """
    listed = open_repo(repo).git.ls_files("-z", "--cached", "--others", "--exclude-standard").split("\0")
    digest = hashlib.sha256()
    for rel in agent_visible(listed):
        path = repo / rel
        digest.update(rel.encode() + b"\0")
        digest.update((sha256_file(path) if path.is_file() else "-").encode())
    return digest.hexdigest()


def uncommitted(repo: Path) -> list[str]:
    """Changed or untracked (non-ignored) paths outside the harness's own records."""
    lines = open_repo(repo).git.status("--porcelain", "-z", "--untracked-files=all").split("\0")
    return agent_visible(line[3:] for line in lines if len(line) > 3)


def discard_changes(repo: Path) -> None:
    """Put the tree back to HEAD (`--reset-on-fail`, a discarded optimize trial), keeping the harness's records."""
    git = open_repo(repo).git
    tracked = set(filter(None, git.ls_files("-z").split("\0")))
    for rel in uncommitted(repo):
        if rel in tracked:
            git.checkout("HEAD", "--", rel)
        else:
            (repo / rel).unlink(missing_ok=True)


def agent_visible(paths: Iterable[str]) -> list[str]:
    """`paths` without the harness's own records (PRD.json, progress.txt, anything under .ralph/)."""
    return sorted({p for p in paths if p and p not in HARNESS_FILES and not p.startswith(f"{RALPH_DIR}/")})


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
