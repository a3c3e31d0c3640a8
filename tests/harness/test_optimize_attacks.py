"""Optimize against a hostile agent: each test is an attack by a scripted agent (`ralph run --agent command`) on a
search, and what must come of it. The number is the harness's: the agent cannot change the code that computes it,
the checks, the seeds or the holdout, cannot read the holdout, and a killed ralph never counts a trial twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ExitCode
from harness.optimize.board import load_board
from harness.sandbox.environment import bwrap_available
from tests.harness.conftest import git
from tests.harness.optimize_fixture import SLOW_TRAIN, lr_agent, optimize_plan, optimize_repo

HOLDOUT = {"paths": ["holdout"], "run": "python eval_holdout.py {seed}",
           "metric": {"file": "out/h-s{seed}.json", "key": "score"}}
needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap cannot run here")


def search(repo: Path, cmd: str, *args: str) -> Any:
    # the agent's script lives under the host's /tmp, which a sandbox hides: unsandboxed unless a test says otherwise
    sandbox = [] if "--sandbox" in args else ["--sandbox", "none"]
    return CliRunner().invoke(app, ["run", "--agent", "command", "--agent-cmd", cmd, "--no-input", *args, *sandbox,
                                    "-C", str(repo)])


def one_trial(**changes: Any) -> dict[str, Any]:
    plan = optimize_plan()
    plan["features"][0]["optimize"].update({"budget": {"attempts": 1, "hours": 1}, **changes})
    return plan


def first_trial(repo: Path) -> Any:
    board = load_board(repo, "OPT-1")
    assert board is not None
    return board.candidates[0]


@pytest.mark.parametrize(("attack", "restored"), [
    ('sed -i "s/score = 1/score = 10/" train.py', "train.py"),  # the code that computes the number (fixed)
    ('sed -i "s/\\"seeds\\": \\[/\\"seeds\\": [99, /" PRD.json', "PRD.json"),  # the seeds
    ('sed -i "s/python train.py {seed}/echo/" PRD.json', "PRD.json"),  # the checks
    ('echo 0.0 > holdout/truth.txt', "holdout/truth.txt"),  # the holdout
])
def test_changing_the_scorer_the_checks_the_seeds_or_the_holdout_is_a_crash_and_put_back(
        repo: Path, tmp_path: Path, attack: str, restored: str) -> None:
    optimize_repo(repo, one_trial(holdout={**HOLDOUT, "acknowledge_unenforced": True}))
    before = (repo / restored).read_text()
    result = search(repo, lr_agent(tmp_path, [0.3], extra=attack))
    assert result.exit_code == ExitCode.BLOCKED, result.output  # the search ended with nothing kept
    trial = first_trial(repo)
    assert trial.verdict == "crash" and "tampering" in trial.detail and restored in trial.detail
    assert (repo / restored).read_text() == before
    assert git(repo, "log", "--format=%s") == "setup"  # nothing committed
    assert trial.ref == "refs/ralph/discarded/OPT-1/1"  # what it tried is kept, not lost


def test_a_metric_file_the_agent_writes_is_set_aside_and_the_checks_write_the_real_one(repo: Path,
                                                                                         tmp_path: Path) -> None:
    optimize_repo(repo, one_trial())
    fake = ("for s in 0 1 2 3 4; do mkdir -p runs/opt-s$s; "
            "echo '{\"score\": 99}' > runs/opt-s$s/results.json; done")
    result = search(repo, lr_agent(tmp_path, [0.1], extra=fake))
    assert result.exit_code == ExitCode.BLOCKED, result.output
    trial = first_trial(repo)
    assert trial.verdict == "discard" and trial.mean is not None and trial.mean < 1.0
    assert all(v < 1.0 for v in trial.per_seed.values())


def test_a_hypothesis_file_is_never_committed_and_a_symlink_is_not_followed(repo: Path, tmp_path: Path) -> None:
    optimize_repo(repo, one_trial())
    (tmp_path / "secret").write_text("outside the repository\n")
    result = search(repo, lr_agent(tmp_path, [0.3], extra=f"rm hypothesis.txt; ln -s {tmp_path}/secret hypothesis.txt"))
    assert result.exit_code == ExitCode.OK, result.output
    trial = first_trial(repo)
    assert trial.verdict == "keep" and "outside" not in trial.hypothesis
    assert "hypothesis.txt" not in git(repo, "ls-tree", "-r", "--name-only", "HEAD")


@needs_bwrap
def test_the_agent_can_neither_read_nor_list_the_holdout_under_bwrap(repo: Path, tmp_path: Path) -> None:
    optimize_repo(repo, one_trial(holdout=HOLDOUT))
    loot = tmp_path / "loot"
    steal = f"mkdir -p {loot}; cat holdout/truth.txt > stolen.txt 2>&1; ls -A holdout > listed.txt 2>&1; " \
            f"cp stolen.txt listed.txt {loot}/ 2>/dev/null; true"
    result = search(repo, lr_agent(tmp_path, [0.3], extra=steal), "--sandbox", "bwrap")
    assert result.exit_code == ExitCode.OK, result.output
    assert "0.25" not in (repo / "stolen.txt").read_text()  # an empty tmpfs: no such file
    assert (repo / "listed.txt").read_text().strip() == ""
    assert (repo / "holdout" / "truth.txt").read_text() == "0.25\n"  # still there for the harness
    assert first_trial(repo).holdout is not None


def test_the_visible_checks_cannot_read_the_holdout(repo: Path, tmp_path: Path) -> None:
    """The candidate's own training code runs in the checks: the holdout is not in their checkout."""
    optimize_repo(repo, one_trial(fixed=["eval_holdout.py"], holdout={**HOLDOUT, "acknowledge_unenforced": True}))
    peek = ("sed -i 's/^score = 1/score = float(open(\"holdout\\/truth.txt\").read()) + 1/' train.py")
    result = search(repo, lr_agent(tmp_path, [0.3], extra=peek))
    assert result.exit_code == ExitCode.BLOCKED, result.output
    trial = first_trial(repo)
    assert trial.verdict == "crash" and "train" in trial.detail  # FileNotFoundError: it was withheld


# ------------------------------------------------------------------ ralph killed mid-trial


# ralph dies right after a kept trial's commit, before the leaderboard is written
DIES_AFTER_A_KEEP = ("import os, signal\nimport harness.optimize.search as s\nsave = s.save_board\n"
                     "def dying(repo, board):\n"
                     "    if any(t.verdict == 'keep' for t in board.candidates): os.kill(os.getpid(), signal.SIGKILL)\n"
                     "    return save(repo, board)\n"
                     "s.save_board = dying")


def _ralph(repo: Path, cmd: str, patch: str = "", *args: str) -> subprocess.Popen:
    code = f"{patch}\nfrom harness.cli import main; main()"
    argv = [sys.executable, "-c", code, "run", "--agent", "command", "--agent-cmd", cmd, "--no-input", "--sandbox", "none",
            *args, "-C", str(repo)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool]) -> None:
    """SIGKILL `proc` (ralph) as soon as `ready()` holds."""
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def test_kill_9_while_the_agent_works_resumes_without_counting_the_trial(repo: Path, tmp_path: Path) -> None:
    plan = optimize_plan()
    optimize_repo(repo, plan)
    started = tmp_path / "started"
    # the second trial's agent sleeps (the first time only) after changing the tree and the plan
    cmd = lr_agent(tmp_path, [0.05, 0.3, 0.3, 0.2], extra=f"""
if [ "$lr" = "0.3" ] && [ ! -e {started} ]; then
  sed -i 's/"attempts": 3/"attempts": 30/' PRD.json; touch {started}; sleep 600
fi""")
    _kill_when(_ralph(repo, cmd), started.exists)
    rerun = search(repo, cmd)
    assert rerun.exit_code == ExitCode.OK, rerun.output
    board = load_board(repo, "OPT-1")
    assert [t.n for t in board.candidates] == [1, 2, 3]  # trial 2 ran again, once; three trials in all
    assert [t.verdict for t in board.candidates][:2] == ["discard", "keep"]
    assert json.loads((repo / "PRD.json").read_text())["features"][0]["optimize"]["budget"]["attempts"] == 3
    assert "| interrupted | OPT-1" in (repo / "progress.txt").read_text()


def test_kill_9_while_the_checks_run_resumes_without_counting_the_trial(repo: Path, tmp_path: Path) -> None:
    """ralph killed while a trial's checks run, the candidate in the working tree: the next run takes that tree as
    ralph's (not a dirty tree of the user's), puts the incumbent back and runs the trial again, counted once."""
    plan = optimize_plan()
    plan["features"][0]["optimize"]["budget"] = {"attempts": 1, "hours": 1}
    plan["features"][0]["verify"][0]["run"] = SLOW_TRAIN
    optimize_repo(repo, plan)
    first = tmp_path / "first"
    cmd = lr_agent(tmp_path, [0.3, 0.3], extra=f"""
if [ ! -e {first} ]; then touch {first}; echo '{{"lr": 0.3, "sleep": 60}}' > config.json; fi""")
    state = repo / ".ralph" / "optimize" / "OPT-1" / "trial.json"
    _kill_when(_ralph(repo, cmd), lambda: state.is_file() and '"stage": "checks"' in state.read_text())
    rerun = search(repo, cmd)
    assert rerun.exit_code == ExitCode.OK, rerun.output
    board = load_board(repo, "OPT-1")
    assert [(t.n, t.verdict) for t in board.candidates] == [(1, "keep")]
    assert "| interrupted | OPT-1" in (repo / "progress.txt").read_text()
    assert json.loads((repo / ".ralph" / "state.json").read_text())["features"]["OPT-1"]["attempts"] == 1


def test_kill_9_after_the_decision_records_the_trial_once(repo: Path, tmp_path: Path) -> None:
    optimize_repo(repo, optimize_plan())
    cmd = lr_agent(tmp_path, [0.3, 0.05, 0.2])
    proc = _ralph(repo, cmd, DIES_AFTER_A_KEEP)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    kept = git(repo, "log", "--format=%s")
    assert kept.splitlines()[0].startswith("optimize(OPT-1): trial 1 kept")
    rerun = search(repo, cmd)
    assert rerun.exit_code == ExitCode.OK, rerun.output
    board = load_board(repo, "OPT-1")
    assert [(t.n, t.verdict) for t in board.candidates] == [(1, "keep"), (2, "discard"), (3, "discard")]
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert sum(s.startswith("optimize(OPT-1): trial 1 kept") for s in subjects) == 1  # not committed again
    assert board.candidates[0].commit == git(repo, "rev-parse", "ralph/OPT-1/best")


def test_kill_9_between_the_decisions_of_a_parallel_round_counts_its_undecided_trial_once(repo: Path,
                                                                                        tmp_path: Path) -> None:
    """A `--parallel 2` round, measured: ralph dies right after it committed the first candidate (kept), before the
    second was decided. The first is recorded once; the second is not counted (its attempt given back) and runs
    again."""
    optimize_repo(repo, optimize_plan())
    cmd = lr_agent(tmp_path, [0.3] * 5)
    proc = _ralph(repo, cmd, DIES_AFTER_A_KEEP, "--parallel", "2")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    assert git(repo, "log", "-1", "--format=%s").startswith("optimize(OPT-1): trial 1 kept")
    rerun = search(repo, cmd, "--parallel", "2")
    assert rerun.exit_code == ExitCode.OK, rerun.output
    board = load_board(repo, "OPT-1")
    # trials 2 and 3 start from the kept lr 0.3 and set it again: the agent changed nothing, a crash (not measured)
    assert [(t.n, t.verdict) for t in board.candidates] == [(1, "keep"), (2, "crash"), (3, "crash")]
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert sum(s.startswith("optimize(OPT-1): trial 1 kept") for s in subjects) == 1
    assert "| interrupted | OPT-1" in (repo / "progress.txt").read_text()
    assert json.loads((repo / ".ralph" / "state.json").read_text())["features"]["OPT-1"]["attempts"] == 3


def test_the_editor_tool_refuses_to_show_a_hidden_path(tmp_path: Path) -> None:
    """Backends with ralph's own tools (anthropic, replay): the editor reads files in Python, outside any sandbox."""
    from harness.agents.tools import Workspace

    (tmp_path / "holdout").mkdir()
    (tmp_path / "holdout" / "truth.txt").write_text("0.25\n")
    (tmp_path / "link").symlink_to(tmp_path / "holdout")
    with Workspace(tmp_path, hidden=["holdout"]) as ws:
        for path in ("holdout/truth.txt", "holdout", "link/truth.txt", str(tmp_path / "holdout" / "truth.txt")):
            shown = ws.run_tool("str_replace_based_edit_tool", {"command": "view", "path": path})
            assert shown.is_error and "0.25" not in shown.text and "hidden" in shown.text
