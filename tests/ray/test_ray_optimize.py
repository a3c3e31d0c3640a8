"""An optimize search whose seeded check runs on a real local Ray head: each seed of each measurement (the baseline,
every candidate of a `--parallel` round, the confirmation) is one Ray job, and the leaderboard records the trials
with the compute their jobs took."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExitCode
from harness.optimize.board import load_board
from tests.harness.conftest import git
from tests.harness.optimize_fixture import SLOW_TRAIN, lr_agent, optimize_plan, optimize_repo
from tests.ray.conftest import ralph, submitted

pytestmark = pytest.mark.ray


def ray_search_repo(tmp_path: Path, fid: str, budget: dict[str, Any], run: str = "python train.py {seed}") -> Path:
    """A repository whose optimize feature `fid` runs its seeded check (`run`, seeds 0 and 1) on Ray, a quarter GPU
    per job, starting far from the optimum (two seeds show the gain)."""
    plan = optimize_plan()
    plan["features"][0]["id"] = fid
    plan["features"][0]["optimize"].update(seeds=[0, 1], confirm_seeds=[10, 11], budget=budget)
    plan["features"][0]["verify"] = [{"name": "train", "run": run, "seeds": [0, 1], "executor": "ray",
                                      "resources": {"cpus": 0.25, "gpus": 0.25}}]
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    return optimize_repo(repo, plan, lr=0.9)


def run_args(cmd: str, *args: str) -> list[str]:
    # unsandboxed: the agent's script lives under the host's /tmp
    return ["run", "--agent", "command", "--agent-cmd", cmd, "--no-input", "--sandbox", "none", *args]


def test_a_parallel_search_runs_each_seed_of_each_candidate_as_a_ray_job(cluster, tmp_path: Path) -> None:
    budget = {"attempts": 2, "hours": 1, "trial_hours": 0.01}  # each run stopped at 36 s
    repo = ray_search_repo(tmp_path, "OPT-RAY", budget)
    done = ralph(repo, *run_args(lr_agent(tmp_path, [0.3, 0.05]), "--parallel", "2"), timeout=480)
    assert done.returncode in (ExitCode.OK, ExitCode.BLOCKED), done.stdout + done.stderr  # two confirmation seeds
    board = load_board(repo, "OPT-RAY")
    assert board is not None and board.ending is not None
    base, first, second, confirmation = board.trials
    assert (first.verdict, second.verdict) == ("keep", "discard") and "its incumbent moved" in second.detail
    # one job per seed of every measurement, each stopped at trial_hours
    jobs = submitted(cluster, "OPT-RAY")
    by_attempt: dict[str, list[str]] = {}
    for job in jobs:
        by_attempt.setdefault(job.metadata["ralph_attempt"], []).append(job.metadata["ralph_seed"])
        assert job.status.value == "SUCCEEDED"
        assert json.loads(base64.b64decode(job.entrypoint.split()[-1]))["timeout_s"] == 36
    assert sorted(by_attempt.pop("1")) == sorted(by_attempt.pop("2")) == ["0", "1"]  # the two candidates
    assert sorted(by_attempt["0"]) == ["0", "1", "10", "10", "11", "11"]  # baseline; winner and baseline confirmed
    assert len(jobs) == 10
    # the metric files came back from the jobs: the keep rule read them
    assert first.per_seed.keys() == {0, 1} and first.mean == pytest.approx(1, abs=0.05)
    for t in (base, first, second, confirmation):
        assert t.gpu_hours == pytest.approx(t.compute_hours / 4) and t.compute_hours > 0  # 0.25 GPU per job
    printed = ralph(repo, "leaderboard", "OPT-RAY", "--json")
    trials = json.loads(printed.stdout)["trials"]
    assert [t["verdict"] for t in trials][:3] == ["keep", "keep", "discard"]
    assert all(t["gpu_hours"] > 0 for t in trials)


def test_kill_9_while_a_trials_jobs_run_stops_them_and_counts_the_trial_once(cluster, tmp_path: Path) -> None:
    repo = ray_search_repo(tmp_path, "OPT-RAY-KILL", {"attempts": 1, "hours": 1}, run=SLOW_TRAIN)
    first = tmp_path / "first"
    # the first trial's training hangs (600 s); when it runs again it does not
    cmd = lr_agent(tmp_path, [0.3, 0.3], extra=f"""
if [ ! -e {first} ]; then touch {first}; echo '{{"lr": 0.3, "sleep": 600}}' > config.json; fi""")
    proc = subprocess.Popen([sys.executable, "-c", "from harness.cli import main; main()", *run_args(cmd),
                             "-C", str(repo)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not [j for j in submitted(cluster, "OPT-RAY-KILL")
               if j.metadata["ralph_attempt"] == "1" and j.status.value == "RUNNING"]:
        assert proc.poll() is None and time.monotonic() < deadline, "the trial's jobs never ran"
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    hung = [j.submission_id for j in submitted(cluster, "OPT-RAY-KILL") if j.metadata["ralph_attempt"] == "1"]
    again = ralph(repo, *run_args(cmd), timeout=480)
    assert again.returncode in (ExitCode.OK, ExitCode.BLOCKED), again.stdout + again.stderr
    assert "stopped 2 Ray job(s) left running" in again.stdout
    jobs = {j.submission_id: j for j in submitted(cluster, "OPT-RAY-KILL")}
    assert len(hung) == 2 and all(jobs[h].status.value == "STOPPED" for h in hung)  # stopped, not left to time out
    board = load_board(repo, "OPT-RAY-KILL")
    assert [(t.n, t.verdict) for t in board.candidates] == [(1, "keep")]  # counted once: the run after the kill
    assert json.loads((repo / ".ralph" / "state.json").read_text())["features"]["OPT-RAY-KILL"]["attempts"] == 1
    assert not list((repo / ".ralph" / "optimize" / "OPT-RAY-KILL").glob("jobs/*"))
