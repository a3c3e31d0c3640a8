"""An optimize search whose seeded check runs on a real local Ray head: each seed of each measurement (the baseline,
every candidate of a `--parallel` round, the confirmation) is one Ray job, and the leaderboard records the trials
with the compute their jobs took."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.optimize.board import load_board
from tests.harness.conftest import git
from tests.harness.optimize_fixture import lr_agent, optimize_plan, optimize_repo
from tests.ray.conftest import ralph, submitted

pytestmark = pytest.mark.ray


def test_a_parallel_search_runs_each_seed_of_each_candidate_as_a_ray_job(cluster, tmp_path: Path) -> None:
    plan = optimize_plan()
    plan["features"][0]["id"] = "OPT-RAY"
    budget = {"attempts": 2, "hours": 1, "trial_hours": 0.01}  # each run stopped at 36 s
    plan["features"][0]["optimize"].update(seeds=[0, 1], confirm_seeds=[10, 11], budget=budget)
    plan["features"][0]["verify"] = [{"name": "train", "run": "python train.py {seed}", "seeds": [0, 1],
                                      "executor": "ray", "resources": {"cpus": 0.25, "gpus": 0.25}}]
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    optimize_repo(repo, plan, lr=0.9)  # far from the optimum: two seeds show the gain
    # unsandboxed: the agent's script lives under the host's /tmp
    done = ralph(repo, "run", "--agent", "command", "--agent-cmd", lr_agent(tmp_path, [0.3, 0.05]), "--no-input",
                 "--parallel", "2", "--sandbox", "none", timeout=480)
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
