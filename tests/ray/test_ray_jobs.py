"""`ralph run` with checks that run as jobs on a real local Ray head, driven by a scripted agent.

Each test uses its own feature ids: the head is shared by the session and keeps every job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExitCode
from tests.harness.conftest import git
from tests.ray.conftest import CLUSTER_SECRET, make_repo, ralph, state, submitted

pytestmark = pytest.mark.ray

# The job's script: records where it ran and what it saw, then writes its metric file in its own cwd.
TRAIN = """import json, os, sys, time
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
wait = os.environ.get("WAIT_FOR")
print("training seed", seed, "in", os.getcwd(), flush=True)
time.sleep(float(os.environ.get("SLEEP", "0")))
os.makedirs("out", exist_ok=True)
json.dump({"acc": 0.8 + seed / 100, "cwd": os.getcwd(), "saw_secret": "%s" in os.environ,
           "feature": os.environ.get("RALPH_FEATURE")}, open(f"out/seed{seed}.json", "w"))
open("out/big.bin", "w").write("not asked for")
print("done", flush=True)
""" % CLUSTER_SECRET


def job_feature(fid: str, *, run: str = "python train.py 0", seeds: list[int] | None = None,
                file: str = "out/seed0.json", **check: Any) -> dict[str, Any]:
    train = {"name": "train", "run": run, "executor": "ray", "resources": {"cpus": 0.5}, **check}
    gate: dict[str, Any] = {"name": "acc", "metric": {"file": file, "key": "acc", "op": ">=", "value": 0.75}}
    if seeds:
        train["seeds"] = gate["seeds"] = seeds
    return {"id": fid, "phase": 1, "title": f"train {fid}", "verify": [train, gate]}


def plan(*features: dict[str, Any], max_attempts: int = 2) -> dict[str, Any]:
    return {"version": 1, "project": "ray-test",
            "defaults": {"max_attempts": max_attempts, "attempt_timeout_s": 60, "check_timeout_s": 120},
            "phases": [{"id": 1, "name": "Train", "approval": True}], "features": list(features)}


def write_train(prefix: str = "") -> list[dict[str, str]]:
    return [{"write": "train.py", "content": prefix + TRAIN}]


def commits(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def test_two_feature_phase_with_a_job_backed_feature(cluster, tmp_path: Path) -> None:
    local = {"id": "LOCAL-1", "phase": 1, "title": "notes", "verify": [{"name": "notes", "run": "test -f notes.md"}]}
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-1", resources={"gpus": 1, "cpus": 0.5}), local),
                             {"JOB-1": [write_train("import os; os.environ.setdefault('SLEEP', '3')\n")],
                              "LOCAL-1": [[{"write": "notes.md", "content": "notes\n"}]]})
    done = ralph(repo, "run", "--phase", "1", script=script)
    assert done.returncode == ExitCode.AWAITING_APPROVAL, done.stdout + done.stderr
    # The local feature went on while the job ran, and its commit carries none of the job's work.
    assert commits(repo) == ["feat(JOB-1): train JOB-1", "feat(LOCAL-1): notes", "plan"]
    assert "train.py" not in git(repo, "show", "--name-only", "--format=", "HEAD~1")
    assert set(git(repo, "show", "--name-only", "--format=", "HEAD").split()) >= {"train.py", "out/seed0.json"}
    metric = json.loads((repo / "out" / "seed0.json").read_text())
    assert metric["acc"] == 0.8 and metric["feature"] == "JOB-1"
    assert metric["cwd"] != str(repo) and "working_dir_files" in metric["cwd"]  # written on the cluster's side
    assert metric["saw_secret"] is False  # the cluster's credentials were scrubbed like a local check's
    assert not (repo / "out" / "big.bin").exists()  # only the gate's file and declared artifacts come back
    fs = state(repo)["features"]["JOB-1"]
    assert fs["status"] == "passing" and fs["pending"] is None
    assert [j["state"] for j in fs["jobs"]] == ["SUCCEEDED"] and len(submitted(cluster, "JOB-1")) == 1
    progress = (repo / "progress.txt").read_text()
    job = fs["jobs"][0]
    assert job["gpus"] == 1
    assert "jobs-submitted | JOB-1" in progress and "ralph-JOB-1-a1-train" in progress
    recorded = float(progress.split("gpu-hours: ")[1].split()[0])  # 1 GPU x the job's run time on the cluster
    assert recorded == pytest.approx((job["ended_at"] - job["started_at"]) / 3600, abs=1e-4) and recorded > 0
    listed = ralph(repo, "jobs")
    assert fs["jobs"][0]["id"] in listed.stdout and "SUCCEEDED" in listed.stdout


def test_no_wait_then_a_later_run_collects(cluster, tmp_path: Path) -> None:
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-2", artifacts=["out/*.bin"])),
                             {"JOB-2": [write_train("import os; os.environ['SLEEP'] = '4'\n")]})
    first = ralph(repo, "run", "--phase", "1", "--no-wait", script=script)
    assert first.returncode == ExitCode.JOBS_RUNNING, first.stdout + first.stderr
    assert "still running as jobs" in first.stdout and "error" not in first.stdout + first.stderr
    fs = state(repo)["features"]["JOB-2"]
    assert fs["status"] == "running" and fs["pending"]["changes"].keys() == {"train.py"}
    job_id = fs["jobs"][0]["id"]
    listed = ralph(repo, "jobs")
    assert job_id in listed.stdout and "JOB-2" in listed.stdout
    assert commits(repo) == ["plan"]
    # The attempt's uncommitted train.py is its own, not a dirty tree of the user's:
    again = ralph(repo, "run", "--phase", "1", script=script)
    assert again.returncode == ExitCode.AWAITING_APPROVAL, again.stdout + again.stderr
    assert commits(repo)[0] == "feat(JOB-2): train JOB-2"
    assert (repo / "out" / "big.bin").read_text() == "not asked for"  # a declared artifact came back
    assert len(submitted(cluster, "JOB-2")) == 1
    logs = ralph(repo, "jobs", "logs", job_id[:14])
    assert "training seed 0" in logs.stdout and "RALPH-RESULT-BEGIN" not in logs.stdout


def test_a_users_own_change_is_still_a_dirty_tree_while_jobs_run(cluster, tmp_path: Path) -> None:
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-3")),
                             {"JOB-3": [write_train("import os; os.environ['SLEEP'] = '2'\n")]})
    assert ralph(repo, "run", "--phase", "1", "--no-wait", script=script).returncode == ExitCode.JOBS_RUNNING
    (repo / "mine.txt").write_text("the user's\n")
    refused = ralph(repo, "run", "--phase", "1", script=script)
    assert refused.returncode == ExitCode.USAGE
    assert "mine.txt" in refused.stderr and "train.py" not in refused.stderr
    (repo / "mine.txt").unlink()
    assert ralph(repo, "jobs", "wait").returncode == 0
    assert commits(repo)[0] == "feat(JOB-3): train JOB-3"


def test_ralph_killed_mid_job_resumes_without_submitting_again(cluster, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    waiting = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.2)\n"
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-4")), {"JOB-4": [write_train(waiting)]})
    cmd = [sys.executable, "-c", "from harness.cli import main; main()", "run", "--phase", "1", "--agent", "replay",
           "--agent-cmd", str(script), "--no-input", "-C", str(repo)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = (state(repo)["features"].get("JOB-4", {}).get("jobs") if (repo / ".ralph/state.json").exists()
                else None)
        if jobs and jobs[0]["state"] == "RUNNING":
            break
        time.sleep(0.3)
    else:
        pytest.fail("the job never ran")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # As if ralph had died between submitting and writing that down: the next run must ask the cluster first.
    path = repo / ".ralph" / "state.json"
    data = json.loads(path.read_text())
    data["features"]["JOB-4"]["jobs"][0]["state"] = "SUBMITTING"
    path.write_text(json.dumps(data))
    flag.touch()
    resumed = ralph(repo, "run", "--phase", "1", script=script)
    assert resumed.returncode == ExitCode.AWAITING_APPROVAL, resumed.stdout + resumed.stderr
    assert len(submitted(cluster, "JOB-4")) == 1
    assert commits(repo) == ["feat(JOB-4): train JOB-4", "plan"]
    assert state(repo)["features"]["JOB-4"]["attempts"] == 1


def test_a_failing_job_is_failing_evidence_with_its_exit_status_and_log(cluster, tmp_path: Path) -> None:
    broken = "import sys\nprint('loss is nan: diverged', flush=True)\nsys.exit(3)\n"
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-5"), max_attempts=1),
                             {"JOB-5": [[{"write": "train.py", "content": broken}]]})
    done = ralph(repo, "run", "--phase", "1", script=script)
    assert done.returncode == ExitCode.BLOCKED, done.stdout + done.stderr
    fs = state(repo)["features"]["JOB-5"]
    train, gate = fs["last_evidence"]
    assert train["verdict"] == "fail" and train["detail"].startswith("exit 3 on Ray (job ralph-JOB-5")
    assert "diverged" in train["output_tail"] and "diverged" in Path(train["log"]).read_text()
    assert gate["verdict"] == "fail" and "not found" in gate["detail"]
    assert commits(repo) == ["plan"]


def test_nothing_is_submitted_when_a_local_check_fails_first(cluster, tmp_path: Path) -> None:
    feature = job_feature("JOB-10")
    feature["verify"].insert(0, {"name": "unit tests", "run": "test -f tests_pass.txt"})
    repo, script = make_repo(tmp_path, plan(feature, max_attempts=1), {"JOB-10": [write_train()]})
    done = ralph(repo, "run", "--phase", "1", script=script)
    assert done.returncode == ExitCode.BLOCKED, done.stdout + done.stderr
    unit, train, gate = state(repo)["features"]["JOB-10"]["last_evidence"]
    assert unit["verdict"] == "fail" and train["detail"] == "not submitted to Ray: the local check unit tests failed first"
    assert submitted(cluster, "JOB-10") == []


def test_a_job_is_stopped_at_its_timeout(cluster, tmp_path: Path) -> None:
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-8", timeout_s=2), max_attempts=1),
                             {"JOB-8": [write_train("import os; os.environ['SLEEP'] = '120'\n")]})
    done = ralph(repo, "run", "--phase", "1", script=script)
    assert done.returncode == ExitCode.BLOCKED, done.stdout + done.stderr
    train = state(repo)["features"]["JOB-8"]["last_evidence"][0]
    assert train["verdict"] == "timeout" and train["detail"].startswith("timed out after 2s on Ray")
    assert train["exit_code"] == 124


def test_max_hours_stops_the_wait_and_leaves_the_job_running(cluster, tmp_path: Path) -> None:
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-9", timeout_s=300)),
                             {"JOB-9": [write_train("import os; os.environ['SLEEP'] = '120'\n")]})
    stopped = ralph(repo, "run", "--phase", "1", "--max-hours", "0.004", script=script)  # 14.4 s of wall time
    assert stopped.returncode == ExitCode.BUDGET_EXHAUSTED, stopped.stdout + stopped.stderr
    assert "--max-hours 0.004 reached while jobs run" in stopped.stderr
    fs = state(repo)["features"]["JOB-9"]
    assert fs["status"] == "running" and fs["jobs"][0]["state"] in ("PENDING", "RUNNING")
    assert ralph(repo, "jobs", "cancel", fs["jobs"][0]["id"]).returncode == 0  # frees the head's CPU


def test_cancel_then_wait_records_a_cancelled_job(cluster, tmp_path: Path) -> None:
    repo, script = make_repo(tmp_path, plan(job_feature("JOB-6", timeout_s=300)),
                             {"JOB-6": [write_train("import os; os.environ['SLEEP'] = '120'\n")]})
    assert ralph(repo, "run", "--phase", "1", "--no-wait", script=script).returncode == ExitCode.JOBS_RUNNING
    job_id = state(repo)["features"]["JOB-6"]["jobs"][0]["id"]
    cancelled = ralph(repo, "jobs", "cancel", job_id)
    assert cancelled.returncode == 0 and "stopped" in cancelled.stdout, cancelled.stdout + cancelled.stderr
    waited = ralph(repo, "jobs", "wait")
    assert waited.returncode == ExitCode.FAILED, waited.stdout + waited.stderr
    fs = state(repo)["features"]["JOB-6"]
    assert fs["status"] == "failing" and fs["jobs"][0]["state"] == "STOPPED"
    assert "cancelled" in fs["last_evidence"][0]["detail"]


def test_three_seeds_run_as_three_jobs_at_once(cluster, tmp_path: Path) -> None:
    feature = job_feature("JOB-7", run="python train.py {seed}", seeds=[0, 1, 2], file="out/seed{seed}.json")
    repo, script = make_repo(tmp_path, plan(feature), {"JOB-7": [write_train("import os; os.environ['SLEEP'] = '3'\n")]})
    done = ralph(repo, "run", "--phase", "1", script=script)
    assert done.returncode == ExitCode.AWAITING_APPROVAL, done.stdout + done.stderr
    fs = state(repo)["features"]["JOB-7"]
    jobs = fs["jobs"]
    assert sorted(j["seed"] for j in jobs) == [0, 1, 2] and len({j["id"] for j in jobs}) == 3
    # In parallel: every job started before any other had ended.
    assert max(j["started_at"] for j in jobs) < min(j["ended_at"] for j in jobs)
    gate = fs["last_evidence"][1]
    assert gate["figures"]["acc"] == pytest.approx(0.81) and gate["figures"]["acc[seed=2]"] == pytest.approx(0.82)
    assert len(submitted(cluster, "JOB-7")) == 3
