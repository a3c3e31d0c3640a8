"""Git records through GitPython: the candidate tree of an attempt, one commit per verified
feature with trailers, phase tags, and the refs an attempt may not move.

Commits never include `.ralph/`, run outputs, checkpoints, local secrets files or anything over
the size limit, even when the repository's .gitignore would let them in; what was left out is
returned (and named in the commit body) instead of being silently dropped.

ralph's own git commands never run code the agent could have planted: hooks are off
(`core.hooksPath=/dev/null`), fsmonitor and signing are off, the global and system config files
(writable by an unsandboxed agent; they can define filters and helpers) are not read, credentials
are blanked from git's environment, and commits are made with `git commit-tree`, which runs no
hooks at all. The repository's own `.git/config` is one of the guarded paths (guards.py).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import git

from harness.books.layout import GIT_DIR, HARNESS_FILES, RALPH_DIR
from harness.books.records import Evidence
from harness.errors import RalphError
from harness.fileio import sha256_file
from harness.plan.prd import Feature
from harness.secrets import is_secret

EXCLUDED_DIRS = frozenset({RALPH_DIR, "runs", "wandb", "checkpoints", GIT_DIR})
EXCLUDED_FILES = ("*.pt", "*.pth", "*.ckpt", "*.safetensors", ".env", ".env.*")
MAX_FILE_BYTES = 5 * 1024 * 1024
_BATCH = 200  # paths per git invocation, to stay under the OS argument limit
# `-c` overrides for every git command ralph runs (GIT_CONFIG_COUNT beats every config file).
SAFE_CONFIG = {"core.hooksPath": "/dev/null", "core.fsmonitor": "false", "commit.gpgSign": "false",
               "tag.gpgSign": "false", "core.pager": "cat"}
RALPH_TAGS = "refs/tags/ralph/"


def agent_visible(paths: Iterable[str]) -> list[str]:
    """`paths` without the harness's own records (PRD.json, progress.txt, anything under .ralph/)."""
    return sorted({p for p in paths if p and p not in HARNESS_FILES and not p.startswith(f"{RALPH_DIR}/")})


class VCSError(RalphError):
    """The repository is not in a state ralph can record into."""


@dataclass
class CommitResult:
    sha: str
    committed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


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


def safe_git_env() -> dict[str, str]:
    """Environment for ralph's git commands: config overrides that disable everything that executes."""
    env = {k: "" for k in os.environ if is_secret(k)}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               GIT_CONFIG_COUNT=str(len(SAFE_CONFIG)))
    for i, (key, value) in enumerate(SAFE_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def open_repo(path: Path | str) -> git.Repo:
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise VCSError(f"{path} is not a git repository; run `git init` there (or `ralph init`, which does)") from None
    repo.git.update_environment(**safe_git_env())
    return repo


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
    """Commit/tag as the configured user (read here, since git itself skips the global config);
    as `ralph` only when no identity is configured at all."""
    reader = repo.config_reader()
    name = os.environ.get("GIT_AUTHOR_NAME") or str(reader.get_value("user", "name", default="")) or "ralph"
    email = os.environ.get("GIT_AUTHOR_EMAIL") or str(reader.get_value("user", "email", default="")) \
        or "ralph@localhost"
    env = dict(GIT_AUTHOR_NAME=name, GIT_COMMITTER_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_EMAIL=email)
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
            if PurePosixPath(path).parts[0] != RALPH_DIR:  # the harness's own state: not worth reporting
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


@dataclass
class Candidate:
    """The tree ralph would commit now: HEAD plus every change it may commit (see `stage_changes`)."""

    tree: str
    staged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


@contextlib.contextmanager
def _scratch_index(repo: git.Repo) -> Iterator[None]:
    """Run the block's git commands against a temporary index; the repository's own is untouched."""
    with tempfile.TemporaryDirectory(prefix="ralph-index-") as tmp:
        with repo.git.custom_environment(GIT_INDEX_FILE=str(Path(tmp) / "index")):
            yield


# One path of a tree: (mode, blob sha), or None where the path does not exist.
TreeEntry = tuple[str, str] | None


def candidate(repo_path: Path | str, max_file_bytes: int = MAX_FILE_BYTES,
              held: Mapping[str, TreeEntry] | None = None) -> Candidate:
    """The candidate commit's tree for the working tree as it is (written to the object store).

    `held` are the changes of attempts whose checks still run as jobs (path -> their entry): a
    path still exactly as such an attempt left it stays at HEAD's version here, so another
    feature's candidate (and commit) never carries work that has not been verified yet.
    """
    repo = open_repo(repo_path)
    with _scratch_index(repo):
        if repo.head.is_valid():
            repo.git.read_tree("HEAD")
        staged, skipped = stage_changes(repo, max_file_bytes)
        if held:
            kept = [p for p, e in held.items() if _index_entry(repo, p) == e]
            _set_entries(repo, {p: _tree_entry(repo, "HEAD", p) for p in kept})
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


def _set_entries(repo: git.Repo, entries: Mapping[str, TreeEntry]) -> None:
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


def commit_held(repo_path: Path | str, feature: Feature, attempt: int, evidence: list[Evidence],
                changes: Mapping[str, TreeEntry], outputs: Iterable[str]) -> CommitResult:
    """Commit a feature verified by jobs: HEAD's tree plus exactly the attempt's recorded `changes`
    and the files that came back (`outputs`, with PRD.json and progress.txt). Other uncommitted work
    in the tree stays uncommitted. Raises `VCSError` when one of the attempt's paths is no longer as
    it was verified (changed while its jobs ran)."""
    repo = open_repo(repo_path)
    require_branch(repo)
    moved = [p for p, e in changes.items() if worktree_entry(repo_path, p) != e]
    if moved:
        raise VCSError(f"not committing {feature.id}: {', '.join(sorted(moved)[:10])} changed while its jobs ran")
    with _scratch_index(repo):
        if repo.head.is_valid():
            repo.git.read_tree("HEAD")
        _set_entries(repo, changes)
        extra = [p for p in dict.fromkeys([*outputs, *HARNESS_FILES]) if (Path(repo_path) / p).is_file()]
        for chunk in _batched(extra):
            repo.git.add("-f", "--", *chunk)
        tree = repo.git.write_tree()
    msg = commit_message(feature, attempt, evidence, headline_metrics(evidence), [])
    try:
        sha = _commit(repo, tree, msg)
    except git.GitCommandError as e:
        raise VCSError(f"git commit failed for {feature.id}: {(e.stderr or e.stdout or str(e)).strip()}") from None
    return CommitResult(sha=sha, committed=sorted({*changes, *extra}), skipped=[])


def export_tree(repo_path: Path | str, tree: str, dest: Path) -> None:
    """Write the files of `tree` into the (empty) directory `dest`: a clean checkout with no .git."""
    repo = open_repo(repo_path)
    with _scratch_index(repo):
        repo.git.read_tree(tree)
        repo.git.checkout_index("-a", "-f", f"--prefix={Path(dest).resolve()}/")


def tree_changes(repo_path: Path | str, old: str, new: str) -> list[str]:
    """Paths that differ between two trees."""
    out = open_repo(repo_path).git.diff_tree("-r", "--name-only", "--no-renames", "-z", old, new)
    return [p for p in out.split("\0") if p]


def ignored_dirs(repo_path: Path | str) -> list[str]:
    """Top-level directories git ignores entirely (datasets, caches, run outputs, a venv), but not .ralph."""
    out = open_repo(repo_path).git.ls_files("--others", "--ignored", "--exclude-standard", "--directory", "-z")
    dirs = {p.rstrip("/") for p in out.split("\0") if p.endswith("/") and p.count("/") == 1}
    return sorted(dirs - {RALPH_DIR, GIT_DIR})


def _commit(repo: git.Repo, tree: str, message: str) -> str:
    """Commit `tree` on the current branch with `git commit-tree` (no hooks) and move the branch."""
    branch = repo.git.symbolic_ref("HEAD")
    parent = repo.head.commit.hexsha if repo.head.is_valid() else None
    fd, msg_path = tempfile.mkstemp(prefix="ralph-commit-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(message)
        with _identity(repo):
            sha = repo.git.commit_tree(tree, *(["-p", parent] if parent else []), "-F", msg_path)
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
) -> CommitResult:
    """Commit the working tree for a verified feature: `feat(<ID>): <title>` plus Ralph-* trailers.

    With `verified` (the candidate the checks ran on), the tree committed may differ from it only
    in `outputs` (what the checks wrote, and PRD.json / progress.txt); anything else changed after
    verification raises `VCSError` and nothing is committed. Works on an unborn branch (first
    commit); records an empty commit when nothing changed, so every verification that passed has
    its commit. Raises `VCSError` on a detached HEAD. `held`: see `candidate`.
    """
    repo = open_repo(repo_path)
    require_branch(repo)
    now = candidate(repo_path, max_file_bytes, held)
    if verified is not None:
        allowed = {*outputs, "PRD.json", "progress.txt"}
        unverified = [p for p in tree_changes(repo_path, verified.tree, now.tree) if p not in allowed]
        if unverified:
            raise VCSError(f"not committing {feature.id}: {', '.join(unverified[:10])} changed after the checks ran")
    msg = commit_message(feature, attempt, evidence, headline_metrics(evidence) if metrics is None else metrics,
                         now.skipped)
    try:
        sha = _commit(repo, now.tree, msg)
    except git.GitCommandError as e:
        raise VCSError(f"git commit failed for {feature.id}: {(e.stderr or e.stdout or str(e)).strip()}") from None
    return CommitResult(sha=sha, committed=now.staged, skipped=now.skipped)


def find_attempt_commit(repo_path: Path | str, since: str | None, feature_id: str, attempt: int) -> str | None:
    """The commit after `since` on the current branch whose trailers name this feature and attempt."""
    repo = open_repo(repo_path)
    if not repo.head.is_valid():
        return None
    span = f"{since}..HEAD" if since else "HEAD"
    for commit in repo.iter_commits(span, max_count=50):
        lines = str(commit.message).splitlines()
        if f"Ralph-Feature: {feature_id}" in lines and f"Ralph-Attempt: {attempt}" in lines:
            return commit.hexsha
    return None


# ---------------------------------------------------------------- refs an attempt may not move


@dataclass(frozen=True)
class Refs:
    """HEAD (the branch it names, or "" when detached), the branch's commit and ralph's tags."""

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
    listed = repo.git.for_each_ref("--format=%(refname) %(objectname)", RALPH_TAGS.rstrip("/"))
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
    with _identity(repo):
        repo.create_tag(name, ref="HEAD", message=message or name, force=True)
    if other in repo.tags:
        repo.delete_tag(repo.tags[other])
    return name


def tag_phase_approved(repo_path: Path | str, phase_id: int, message: str = "") -> str:
    return _tag_phase(repo_path, phase_id, "approved", message)


def tag_phase_rejected(repo_path: Path | str, phase_id: int, message: str = "") -> str:
    return _tag_phase(repo_path, phase_id, "rejected", message)
