"""What `ralph init` writes: a PRD from a template (plan/templates/), DESIGN-PRINCIPLES.md,
progress.txt's first entry, .gitignore lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import RalphError
from harness.plan.templates import template

if TYPE_CHECKING:
    from harness.plan.prd import PRD


class InitConflict(RalphError):
    """Files `ralph init` would overwrite already exist."""


@dataclass
class InitResult:
    written: list[str]
    unprotected: list[str] = field(default_factory=list)  # template globs left out: nothing matches them yet


def protect_what_exists(prd: PRD, repo: Path) -> list[str]:
    """Keep only the protected globs that match something in `repo`; returns the ones dropped.

    A glob over files that do not exist yet (`tests/lab/**` in an empty repository) would make
    the guards delete whatever the agent creates there, so a plan whose checks run those files
    could never pass. Protection is for judges that exist; the init message says how to add it back.
    """
    from harness.plan.patterns import expand

    kept = [g for g in prd.defaults.protected if expand(repo, [g])]
    dropped = [g for g in prd.defaults.protected if g not in kept]
    prd.defaults.protected = kept
    return dropped


def init_project(repo: Path, template_name: str, *, force: bool = False) -> InitResult:
    """Set up `repo` for ralph; returns what was written. Never overwrites without `force`,
    and never rewrites progress.txt (an existing one gets an `init` entry appended)."""
    import git

    from harness.books.progress import LogEntry, ProgressLog
    from harness.plan.prd import save_prd
    from harness.plan.templates.principles import GITIGNORE_LINES, PRINCIPLES

    repo.mkdir(parents=True, exist_ok=True)
    prd_path, principles_path = repo / "PRD.json", repo / "DESIGN-PRINCIPLES.md"
    existing = [p.name for p in (prd_path, principles_path) if p.exists()]
    if existing and not force:
        raise InitConflict(f"{', '.join(existing)} already exist{'s' * (len(existing) == 1)} in {repo}; "
                           "nothing was written. Use --force to overwrite them (progress.txt is only appended to).")
    progress = ProgressLog(repo)
    progress.audit()
    written = []
    try:
        git.Repo(repo)
    except git.InvalidGitRepositoryError:
        git.Repo.init(repo)
        written.append("git repository")
    prd = template(template_name)(repo.resolve().name)
    unprotected = protect_what_exists(prd, repo)
    save_prd(prd, prd_path)
    principles_path.write_text(PRINCIPLES, encoding="utf-8")
    written += ["PRD.json", "DESIGN-PRINCIPLES.md"]
    gitignore = repo / ".gitignore"
    have = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    missing = [line for line in GITIGNORE_LINES if line not in have]
    if missing:
        prefix = "" if not have or gitignore.read_text(encoding="utf-8").endswith("\n") else "\n"
        with open(gitignore, "a", encoding="utf-8") as f:
            f.write(prefix + "# ralph: harness state, run outputs and environments are never committed\n"
                    + "\n".join(missing) + "\n")
        written.append(f".gitignore (+{len(missing)} lines)")
    fields = {"written": ", ".join(written)}
    if unprotected:
        fields["not protected yet"] = ", ".join(unprotected)
    progress.append(LogEntry(kind="init", subject=template_name, fields=fields))
    written.append("progress.txt")
    return InitResult(written, unprotected)
