"""Which environment variables are credentials: removed from what checks and agents see, and never
written into a job's environment or a commit."""

from __future__ import annotations

import fnmatch

# Names always removed; the glob patterns catch the rest (GITHUB_TOKEN, AWS_SECRET, HF_API_KEY, ...).
SECRET_NAMES = frozenset({"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "WANDB_API_KEY"})


SECRET_PATTERNS = ("*_TOKEN", "*_SECRET", "*_KEY")


def is_secret(name: str) -> bool:
    """True when an environment variable name looks like a credential."""
    upper = name.upper()
    return upper in SECRET_NAMES or any(fnmatch.fnmatchcase(upper, p) for p in SECRET_PATTERNS)
