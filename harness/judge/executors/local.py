"""The local executor: a `run` check's runs (executors.seed_runs) one after the other, here, in ralph's own
process group, inside the candidate tree's checkout (checktree.py); killed with their whole group at
the check's timeout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from harness.books.records import Evidence, Verdict
from harness.fileio import is_virtualenv
from harness.judge.executors import TAIL_BYTES, run_detail, seed_runs
from harness.plan.prd import Check
from harness.sandbox.environment import safe_path
from harness.sandbox.proc import ProcessResult, run_in_group, scrubbed_env

# Runs one shell command: (command, cwd, *, timeout_s, env, tail_bytes, log_path, on_line) -> ProcessResult.
# `Environment.run` (sandboxing, nothing left running) in the harness; `run_in_group` by default.
Launch = Callable[..., ProcessResult]

# The label (checks.plan_labels and checktree's RALPH_HEAD / RALPH_TREE travel the same way) naming the project's
# Python (harness.settings.check_python), which checktree sets for local runs; checks see it too.
PYTHON_VAR = "RALPH_PYTHON"


def check_env(env_allow: Iterable[str], python: str | None = None) -> dict[str, str]:
    """The environment a local run starts from (its SeedRun's variables go on top): credentials removed,
    the bin dir of `python` first on PATH, so `python`, `pytest` and `lab` are the project's (default: the
    interpreter ralph runs on). When that interpreter belongs to a virtual environment (pyvenv.cfg beside
    its bin dir), VIRTUAL_ENV names it, as activating it would.

    Nothing in the working directory can stand in for a tool: PATH keeps only absolute entries (and
    PYTHONSAFEPATH=1, from seed_runs, keeps modules from being shadowed).
    """
    env = scrubbed_env(env_allow)
    bin_dir = Path(python or sys.executable).parent
    env["PATH"] = safe_path(os.pathsep.join([str(bin_dir), env.get("PATH", "")]))
    if is_virtualenv(bin_dir.parent):
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return env


def run_command_check(
    check: Check,
    repo: Path,
    *,
    env_allow: Iterable[str],
    labels: Mapping[str, str],
    timeout_s: float,
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    launch: Launch = run_in_group,
) -> Evidence:
    """Run the check's runs (`seed_runs`) one after the other in `repo`, stopping at the first that does
    not succeed. `labels[PYTHON_VAR]`, when set, is the interpreter they find first (check_env)."""
    start = time.monotonic()
    commands: list[str] = []
    res = None
    for run in seed_runs(check, labels):
        commands.append(run.command)
        if log_path:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"$ {run.command}\n")
        try:
            res = launch(run.command, repo, timeout_s=timeout_s, env={**check_env(env_allow, labels.get(PYTHON_VAR)), **run.env},
                         tail_bytes=TAIL_BYTES, log_path=log_path, on_line=on_line)
        except OSError as e:  # e.g. the shell itself could not start
            return _run_evidence(check, "error", f"could not start: {e}", start, commands, None, "", log_path)
        if res.timed_out:
            detail = run_detail("timeout", where=run.where, timeout_s=timeout_s)
            return _run_evidence(check, "timeout", detail, start, commands, None, res.output_tail, log_path)
        if res.returncode != 0:
            detail = run_detail("fail", where=run.where, exit_code=res.returncode)
            return _run_evidence(check, "fail", detail, start, commands, res.returncode, res.output_tail, log_path)
    assert res is not None
    return _run_evidence(check, "pass", run_detail("pass", seeds=check.seeds), start, commands, 0, res.output_tail,
                         log_path)


def _run_evidence(
    check: Check, verdict: Verdict, detail: str, start: float, commands: list[str],
    exit_code: int | None, tail: str, log_path: Path | None,
) -> Evidence:
    return Evidence(
        check=check.name, kind="run", verdict=verdict, detail=detail, duration_s=round(time.monotonic() - start, 3),
        command=" && ".join(commands), exit_code=exit_code, output_tail=tail, log=str(log_path) if log_path else None,
    )
