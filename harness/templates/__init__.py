"""What `ralph init` writes: a PRD from a template, DESIGN-PRINCIPLES.md, progress.txt, .gitignore lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import git

from harness.errors import RalphError
from harness.prd import PRD, save_prd
from harness.progress import Entry, ProgressLog
from harness.templates.blank import blank
from harness.templates.principles import GITIGNORE_LINES, PRINCIPLES
from harness.templates.seq_jepa import seq_jepa

TEMPLATES: dict[str, Callable[[str], PRD]] = {"blank": blank, "seq-jepa": seq_jepa}


class InitConflict(RalphError):
    """Files `ralph init` would overwrite already exist."""


def init_project(repo: Path, template: str, *, force: bool = False) -> list[str]:
    """Set up `repo` for ralph; returns what was written. Never overwrites without `force`,
    and never rewrites progress.txt (an existing one gets an `init` entry appended)."""
    repo.mkdir(parents=True, exist_ok=True)
    prd_path, principles_path = repo / "PRD.json", repo / "DESIGN-PRINCIPLES.md"
    existing = [p.name for p in (prd_path, principles_path) if p.exists()]
    if existing and not force:
        raise InitConflict(f"{', '.join(existing)} already exist{'s' * (len(existing) == 1)} in {repo}; "
                           "nothing was written. Use --force to overwrite them (progress.txt is only appended to).")
    progress = ProgressLog(repo)
    progress.verify()
    written = []
    try:
        git.Repo(repo)
    except git.InvalidGitRepositoryError:
        git.Repo.init(repo)
        written.append("git repository")
    save_prd(TEMPLATES[template](repo.resolve().name), prd_path)
    principles_path.write_text(PRINCIPLES, encoding="utf-8")
    written += ["PRD.json", "DESIGN-PRINCIPLES.md"]
    gitignore = repo / ".gitignore"
    have = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    missing = [line for line in GITIGNORE_LINES if line not in have]
    if missing:
        prefix = "" if not have or gitignore.read_text(encoding="utf-8").endswith("\n") else "\n"
        with open(gitignore, "a", encoding="utf-8") as f:
            f.write(prefix + "# ralph: harness state and run outputs are never committed\n" + "\n".join(missing) + "\n")
        written.append(f".gitignore (+{len(missing)} lines)")
    progress.append(Entry(kind="init", subject=template, fields={"written": ", ".join(written)}))
    written.append("progress.txt")
    return written
