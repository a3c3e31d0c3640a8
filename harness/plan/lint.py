"""Plans that cannot lie: find features whose checks only prove that files exist or contain a word,
and statistical gates that pass noise too often.

A check like `test -f docs/method.md` or `grep -q hypothesis notes.md` passes as soon as the agent
writes the file; it never runs the code or reads a measured figure. A feature whose every check
is of that kind can be marked done with nothing working, so `ralph validate` flags it (a warning,
an error under `--strict`), as do `ralph init` and `ralph import`. One command running code, or
one metric gate, is enough for a feature to count as executable.

How a command is read (`shlex`, then by hand: no library parses shell chains statically, and
running them to find out is what the lint must not do): it is split into simple commands at
`&&`, `||`, `;`, `|`, `&`, newlines, `( )` and `{ }`; each simple command loses its `VAR=value`
prefixes and its wrappers (`env`, `timeout 60`, `nice`, `time`, `xargs`, `sudo`, ...), and
`bash -c '…'`, `sh -c`, `eval` are read recursively. It only inspects files when every simple
command is a read-only tool (`test`, `[`, `ls`, `grep`, `cat`, `git ls-files`, `find` without
`-exec` of code, ...) or a shell step that runs nothing (`cd`, `exit`, `set`, `export`). A script, an
interpreter, a build tool, a variable or `$(...)` as the program, anything unreadable, runs code.

Weak statistics (`statistics_findings`, docs/statistics.md): a seeded `mean-std` lower-bound gate
with fewer than 5 seeds passes noise more often than 1 time in 20, and a comparison whose sides ran
the same seeds without saying whether they pair leaves the choice of test to chance.

No control (`control_findings`): a metric gate whose key names a difference (`difference_key`: a part
of the key such as `gain`, `delta`, `diff`, `drop`, `minus`, `vs`, `paired`, `improvement`) and that
speaks for several seeds (it has `seeds`, or its key names a spread: `std`, `spread`, as `lab diff`
writes them) states a learning or comparison claim over seeds; gated against a constant in a list
of checks (a feature's `verify`, a phase's `entry` or `exit`) that holds no `compare` check, nothing
tests that claim against the control's own seed-to-seed noise. A single run's gain gated without
seeds (a smoke check) is not flagged: it claims nothing about noise.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from harness.plan.prd import PRD, Check, Feature

# Programs that look at files without running the project's code.
INSPECTORS = frozenset({
    "test", "[", "[[", "ls", "grep", "egrep", "fgrep", "rg", "cat", "head", "tail", "wc", "stat", "file",
    "true", "false", ":", "echo", "printf", "diff", "cmp", "jq", "find", "du", "tree", "readlink", "realpath",
    "basename", "dirname", "sort", "uniq", "cut", "tr", "md5sum", "sha256sum",
})
# Shell steps that run nothing themselves.
SHELL_STEPS = frozenset({"cd", "pushd", "popd", "exit", "set", "export", "unset", "shopt", "umask", "sleep", "wait"})
GIT_INSPECTORS = frozenset({"ls-files", "grep", "log", "show", "diff", "status", "cat-file", "rev-parse"})
GIT_OPTIONS_WITH_VALUE = frozenset({"-C", "-c", "--git-dir", "--work-tree"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
# Wrappers that run the command after their own options: {name: options that take a value}.
WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S"}),
    "command": frozenset(), "builtin": frozenset(), "exec": frozenset(), "nohup": frozenset(),
    "time": frozenset({"-f", "-o"}), "sudo": frozenset({"-u", "-g"}), "nice": frozenset({"-n"}),
    "ionice": frozenset({"-c", "-n"}), "stdbuf": frozenset({"-i", "-o", "-e"}),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "xargs": frozenset({"-I", "-i", "-n", "-P", "-d", "-L", "-s", "-a", "-E", "--delimiter", "--max-args"}),
}
TAKES_OPERAND = frozenset({"timeout"})  # the duration before the command
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SEPARATORS = frozenset({"&&", "||", ";", ";;", "|", "|&", "&", "!", "(", ")", "{", "}", "\n"})
MAX_DEPTH = 5  # `bash -c "bash -c '…'"` nesting read before giving up (as running code)

HINT = ("to fix: add a check that runs the code, e.g. {\"name\": \"tests\", \"run\": \"pytest -q tests/test_x.py\"}, "
        "or a metric gate on a file a run writes, e.g. {\"name\": \"accuracy\", \"metric\": {\"file\": "
        "\"runs/x/results.json\", \"key\": \"eval.acc\", \"op\": \">=\", \"value\": 0.8}}")


# How often `mean - std > value` passes when the true mean is `value` (normal seed-to-seed noise): with
# n seeds that is P(t_{n-1} > sqrt(n)); 1 seed has std 0, so it passes half the time. Computed by
# judge/calibration.py's `mean_std_false_pass` (scipy, which `ralph validate` does not load), and
# pinned to it by tests/harness/test_lint_statistics.py.
MEAN_STD_FALSE_PASS = {1: 0.5, 2: 0.196, 3: 0.113, 4: 0.070}
STATISTICS_HINT = ("to fix: give the gate at least 5 seeds, or test the claim against a control with a "
                   "'compare' check, e.g. {\"name\": \"beats control\", \"compare\": {\"a\": {\"file\": "
                   "\"runs/x-s{seed}/results.json\", \"key\": \"eval.acc\"}, \"b\": {\"file\": "
                   "\"runs/control-s{seed}/results.json\", \"key\": \"eval.acc\"}, \"seeds\": [0, 1, 2, 3, 4], "
                   "\"paired\": true, \"test\": \"greater\"}} (docs/statistics.md)")


@dataclass(frozen=True)
class Finding:
    feature: str  # the feature's id, or "phase N" for a phase's entry and exit checks
    kind: Literal["no checks", "inspects files only", "weak statistics", "no control", "unwritten file"]
    message: str
    hint: str = HINT  # how to fix it: one line, printed once for all findings that share it


def simple_commands(command: str) -> list[list[str]] | None:
    """`command` as its simple commands (word lists), or None when it cannot be read statically
    (unbalanced quotes, command substitution, here-documents)."""
    if "$(" in command or "`" in command or "<<" in command:
        return None
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>\n")
        lexer.whitespace = " \t\r"  # a newline separates commands, as in a script
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    out: list[list[str]] = [[]]
    for token in tokens:
        if token in SEPARATORS:
            out.append([])
        else:
            out[-1].append(token)
    return [words for words in out if words]


def _skip_options(words: list[str], with_value: frozenset[str]) -> list[str]:
    """`words` after the leading options (and their values) of the program `words[0]`."""
    i = 1
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        if words[i] == "--":
            return words[i + 1:]
        i += 2 if words[i] in with_value else 1
    return words[i:]


def unwrapped(words: list[str]) -> list[str]:
    """The command `words` runs: without `VAR=value` prefixes and wrappers (`env`, `timeout 60`, …)."""
    while words:
        name = words[0].rsplit("/", 1)[-1]
        if ASSIGNMENT.match(words[0]):
            words = words[1:]
        elif name in WRAPPERS:
            words = _skip_options(words, WRAPPERS[name])
            if name == "env":
                continue  # its VAR=value words come next
            if name in TAKES_OPERAND:
                words = words[1:]
        else:
            return words
    return words


def _shell_script(words: list[str]) -> str | None:
    """The `-c` string of `bash -c '…'` (or `sh -euo pipefail -c …`); None for a script file or stdin."""
    has_c, i = False, 1
    while i < len(words) and words[i][:1] in "-+" and len(words[i]) > 1:
        if not words[i].startswith("--"):  # a cluster of short options: `o` takes the next word
            has_c = has_c or "c" in words[i]
            i += "o" in words[i]
        i += 1
    return words[i] if has_c and i < len(words) else None


def commands_in(command: str, depth: int = 0) -> Iterator[list[str]]:
    """Every simple command `command` runs, unwrapped, with the insides of `bash -c '…'` and `eval` (what can
    be read statically; an unreadable part yields nothing)."""
    for words in (simple_commands(command) or []) if depth <= MAX_DEPTH else []:
        words = unwrapped(words)
        name = words[0].rsplit("/", 1)[-1] if words else ""
        script = (" ".join(words[1:]) if name == "eval" else _shell_script(words)) if name in (*SHELLS, "eval") \
            else None
        if script is not None:
            yield from commands_in(script, depth + 1)
        elif words:
            yield words


def _find_runs_code(words: list[str], depth: int) -> bool:
    """`find … -exec CMD {} ;`: runs code when a command it executes does; `-delete` changes files."""
    if "-delete" in words:
        return True
    for i, word in enumerate(words):
        if word in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next((j for j in range(i + 1, len(words)) if words[j] in (";", "+")), len(words))
            if _runs_code(words[i + 1:end], depth):
                return True
    return False


def _runs_code(words: list[str], depth: int) -> bool:
    """Whether one simple command runs code (see the module docstring)."""
    words = unwrapped(words)
    if not words:
        return False
    name = words[0].rsplit("/", 1)[-1]
    if name in SHELLS or name == "eval":
        script = " ".join(words[1:]) if name == "eval" else _shell_script(words)
        return script is None or _chain_runs_code(script, depth + 1)
    if name == "git":
        rest = _skip_options(words, GIT_OPTIONS_WITH_VALUE)
        return not (rest and rest[0] in GIT_INSPECTORS)
    if name == "find":
        return _find_runs_code(words, depth)
    return name not in INSPECTORS and name not in SHELL_STEPS


def _chain_runs_code(command: str, depth: int) -> bool:
    commands = simple_commands(command) if depth <= MAX_DEPTH else None
    return commands is None or any(_runs_code(words, depth) for words in commands)


def inspects_only(check: Check) -> bool:
    """True when `check` is a shell command that only looks at files (exists, lists, greps): no
    simple command anywhere in it runs code."""
    if check.run is None:
        return False  # a metric gate reads a figure a run produced
    if not simple_commands(check.run):
        return False  # empty, or unreadable: not judged
    return not _chain_runs_code(check.run, 0)


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


def check_finding(owner: str, where: str, check: Check) -> Finding | None:
    """A finding when `check` is a statistical gate that passes noise too often, or a comparison that does not
    say whether its seeds pair; `where` names it in the message."""
    if check.metric is not None and check.agg == "mean-std" and check.metric.op in (">", ">=") and check.seeds:
        n = len(check.seeds)
        if n in MEAN_STD_FALSE_PASS:
            return Finding(owner, "weak statistics",
                           f"{where}: 'mean-std' over {n} seed{'s' * (n > 1)} against the constant "
                           f"{check.metric.value:g} passes pure noise about {MEAN_STD_FALSE_PASS[n]:.0%} of the time "
                           "(when the true mean is at the threshold); a gate should pass it at most 5%",
                           STATISTICS_HINT)
    comp = check.compare
    if comp is not None and comp.paired is None and comp.same_seeds:
        return Finding(owner, "weak statistics",
                       f"{where}: both sides ran seeds {comp.seeds_of('a')}, but 'paired' is not set, so they are "
                       "compared as two independent groups (Welch t-test)",
                       "to fix: set \"paired\": true when seed s of a and of b share what the seed controls (data "
                       "order, initialisation): a paired t-test, with more power; set \"paired\": false when they "
                       "do not")
    return None


def _check_lists(prd: PRD) -> list[tuple[str, str, list[Check]]]:
    """(owner, where, checks) for every list of checks: each feature's `verify`, each phase's `entry` and `exit`."""
    lists = [(f.id, f.id, f.verify) for f in prd.features]
    return lists + [(f"phase {p.id}", f"phase {p.id} {group}", checks)
                    for p in prd.phases for group, checks in (("entry", p.entry), ("exit", p.exit))]


def statistics_findings(prd: PRD) -> list[Finding]:
    """Every check, in features and in phases' entry and exit lists, that `check_finding` flags, in PRD order."""
    owned = [(owner, f"{where} / {c.name}", c) for owner, where, checks in _check_lists(prd) for c in checks]
    return [f for f in (check_finding(*item) for item in owned) if f is not None]


# Words that make a key a difference (a gain over a baseline, a change, one thing against another):
# the key's parts, split at anything that is not a letter or digit, are compared with them.
DIFFERENCE_WORDS = frozenset({"gain", "gains", "delta", "diff", "diffs", "difference", "differences", "improvement",
                              "uplift", "lift", "advantage", "drop", "minus", "vs", "versus", "paired"})
SPREAD_WORDS = frozenset({"std", "stdev", "spread", "sem"})
CONTROL_HINT = ("to fix: test the claim against its control with a 'compare' check (both sides written by the "
                "feature's own runs), e.g. {\"name\": \"beats control\", \"compare\": {\"a\": {\"file\": "
                "\"runs/x-s{seed}/results.json\", \"key\": \"eval.acc\"}, \"b\": {\"file\": "
                "\"runs/control-s{seed}/results.json\", \"key\": \"eval.acc\"}, \"seeds\": [0, 1, 2, 3, 4], "
                "\"paired\": true, \"test\": \"greater\"}}; keep the gate for what it says alone (docs/statistics.md)")


def difference_key(key: str) -> bool:
    """Whether `key` names a difference: one of its parts (split at anything but letters and digits) is in
    `DIFFERENCE_WORDS` (`gain.linacc_agg`, `delta.code_loss`, `diff_plus_spread`, `val_loss_drop`), or it
    holds a Δ."""
    return "Δ" in key or any(part in DIFFERENCE_WORDS for part in re.split(r"[^a-z0-9]+", key.lower()))


def over_seeds(check: Check) -> bool:
    """Whether a metric gate speaks for several seeds: it has `seeds`, or its key names a spread over them."""
    assert check.metric is not None
    return bool(check.seeds) or any(part in SPREAD_WORDS for part in re.split(r"[^a-z0-9]+", check.metric.key.lower()))


def control_findings(prd: PRD) -> list[Finding]:
    """Each metric gate that states a difference over seeds (`difference_key`, `over_seeds`) against a constant, in
    a list of checks with no `compare` check: a learning or comparison claim no test holds against its control's
    noise."""
    out = []
    for owner, where, checks in _check_lists(prd):
        if any(c.compare is not None for c in checks):
            continue
        for c in checks:
            if c.metric is not None and difference_key(c.metric.key) and over_seeds(c):
                seeds = f" over {len(c.seeds)} seed{'s' * (len(c.seeds) > 1)}" if c.seeds else " (a spread over seeds)"
                out.append(Finding(owner, "no control",
                                   f"{where} / {c.name}: '{c.metric.key}' {c.metric.op} {c.metric.value:g}{seeds} "
                                   "states a difference against a constant, and no 'compare' check in it tests the "
                                   "claim against the control's own seed-to-seed noise", CONTROL_HINT))
    return out


UNWRITTEN_HINT = ("to fix: put the run that writes the file in the same feature's 'verify', before the gate (run it "
                  "again there if another feature's checks write it), e.g. {\"name\": \"runs\", \"run\": \"python "
                  "run.py --out runs/x/results.json\"}; metric files are set aside before verification "
                  "(judge/freshness.py)")


def _words(command: str) -> set[str]:
    """The words of a shell command, each `KEY=VALUE` also as its value, without a trailing slash or a leading `./`
    (`--out=runs/x/`, `--set name=x`, `./runs`)."""
    try:
        tokens = shlex.split(command)
    except ValueError:  # unbalanced quotes: the words as written
        tokens = command.split()
    return {w.rstrip("/").removeprefix("./") for t in tokens for w in (t, t.split("=")[-1])}


def _names(command: str, path: str, *, closely: bool = False) -> bool:
    """Whether `command` names `path`, the folder it sits in, or that folder's name (`lab eval runs/x` and
    `lab train --set name=x` write runs/x/results.json); unless `closely`, a folder further up counts too
    (`variants.sh crate 0 runs` writes runs/crate-s0/results.json)."""
    parts, words = PurePosixPath(path).parts, _words(command)
    ancestors = range(len(parts) - 1, len(parts) + 1) if closely else range(1, len(parts) + 1)
    return any("/".join(parts[:i]) in words for i in ancestors) or (len(parts) > 1 and parts[-2] in words)


def unwritten_findings(prd: PRD) -> list[Finding]:
    """Each gate or comparison of a feature that reads a file none of the feature's run checks names (the file or
    a folder above it): the file is set aside before the checks run, so unless one of them writes it (a script
    with a fixed output path does, without naming it) the gate fails as "missing". Another feature's check that
    names it is named in the message: the usual slip."""
    runs = {f.id: [c.run for c in f.verify if c.run] for f in prd.features}
    out = []
    for f in prd.features:
        for c in f.verify:
            files = [c.metric.file] if c.metric else [c.compare.a.file, c.compare.b.file] if c.compare else []
            for path in dict.fromkeys(files):
                if any(_names(cmd, path) for cmd in runs[f.id]):
                    continue
                others = [g for g, cmds in runs.items()
                          if g != f.id and any(_names(cmd, path, closely=True) for cmd in cmds)]
                why = (f"it is written by {', '.join(others)}'s checks, not {f.id}'s" if others else
                       f"none of {f.id}'s run checks names it or its folder" if runs[f.id] else
                       f"{f.id} has no run check to write it")
                out.append(Finding(f.id, "unwritten file",
                                   f"{f.id} / {c.name}: reads {path}, and {why}; metric files are set aside before "
                                   "a feature's checks run, so the gate fails as missing unless they write it",
                                   UNWRITTEN_HINT))
    return out


def plan_findings(prd: PRD) -> list[Finding]:
    """One finding per feature that has no check running code or gating a metric, then each statistical gate
    that passes noise too often (`statistics_findings`), then each difference gated against a constant with no
    control (`control_findings`), then each gate on a file no check of its feature writes (`unwritten_findings`),
    in PRD order."""
    return ([f for f in map(feature_finding, prd.features) if f is not None] + statistics_findings(prd)
            + control_findings(prd) + unwritten_findings(prd))
