"""Plans that cannot lie: find features whose checks only prove that files exist or contain a word.

A check like `test -f docs/method.md` or `grep -q hypothesis notes.md` passes as soon as the agent
writes the file; it never runs the code or reads a measured figure. A feature whose every check
is of that kind can be marked done with nothing working, so `ralph validate` flags it (a warning,
an error under `--strict`), as do `ralph init` and `ralph import`. One command running code, or
one metric gate, is enough for a feature to count as executable.

The shell commands are split with `shlex` into simple commands (at `&&`, `||`, `;`, `|`); a
command that only inspects files is one whose every simple command starts with a read-only tool
below. Anything else (`python`, `pytest`, `lab`, `make`, `$(...)`, a script) runs code.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

from harness.prd import PRD, Check, Feature

# Programs that look at files without running the project's code.
INSPECTORS = frozenset({
    "test", "[", "[[", "ls", "grep", "egrep", "fgrep", "rg", "cat", "head", "tail", "wc", "stat", "file",
    "true", ":", "echo", "printf", "diff", "cmp", "jq", "find", "du", "tree", "readlink", "realpath",
})
GIT_INSPECTORS = frozenset({"ls-files", "grep", "log", "show", "diff", "status", "cat-file", "rev-parse"})
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
OPERATORS = frozenset({"&&", "||", ";", "|", "&", "!", "(", ")", "{", "}"})

HINT = ("to fix: add a check that runs the code, e.g. {\"name\": \"tests\", \"run\": \"pytest -q tests/test_x.py\"}, "
        "or a metric gate on a file a run writes, e.g. {\"name\": \"accuracy\", \"metric\": {\"file\": "
        "\"runs/x/results.json\", \"key\": \"eval.acc\", \"op\": \">=\", \"value\": 0.8}}")


@dataclass(frozen=True)
class Finding:
    feature: str
    kind: Literal["no checks", "inspects files only"]
    message: str


def simple_commands(command: str) -> list[list[str]] | None:
    """`command` as its simple commands (word lists), or None when it cannot be read statically
    (unbalanced quotes, command substitution, here-documents)."""
    if "$(" in command or "`" in command or "<<" in command:
        return None
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    out: list[list[str]] = [[]]
    for token in tokens:
        if token in OPERATORS or set(token) <= set(";&|"):
            out.append([])
        else:
            out[-1].append(token)
    return [words for words in out if words]


def _program(words: list[str]) -> list[str]:
    """`words` without leading `VAR=value` assignments and `env`/`command` wrappers."""
    i = 0
    while i < len(words) and (ASSIGNMENT.match(words[i]) or words[i] in ("env", "command", "builtin", "exec")):
        i += 1
    return words[i:]


def inspects_only(check: Check) -> bool:
    """True when `check` is a shell command that only looks at files (exists, lists, greps)."""
    if check.run is None:
        return False  # a metric gate reads a figure a run produced
    commands = simple_commands(check.run)
    if not commands:
        return False
    for words in commands:
        words = _program(words)
        if not words:
            continue
        name = words[0].rsplit("/", 1)[-1]
        if name == "git" and len(words) > 1 and words[1] in GIT_INSPECTORS:
            continue
        if name == "find" and any(w in ("-exec", "-execdir", "-ok", "-delete") for w in words):
            return False
        if name not in INSPECTORS:
            return False
    return True


def feature_finding(feature: Feature) -> Finding | None:
    if not feature.verify:
        return Finding(feature.id, "no checks",
                       f"{feature.id}: no 'verify' checks, so ralph can never mark it passing and nothing proves it works")
    if all(inspects_only(c) for c in feature.verify):
        names = ", ".join(f"'{c.name}'" for c in feature.verify)
        return Finding(feature.id, "inspects files only",
                       f"{feature.id}: its checks ({names}) only prove that files exist or contain a word; "
                       "nothing runs the code or gates a measured figure, so it can pass with nothing working")
    return None


def plan_findings(prd: PRD) -> list[Finding]:
    """One finding per feature that has no check running code or gating a metric, in PRD order."""
    return [f for f in map(feature_finding, prd.features) if f is not None]
