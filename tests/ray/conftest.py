"""The Ray tier: a real local Ray head (tests/fakes/ray_head.py) shared by the session, and repositories
whose plans run checks on it. `make test-ray` runs it inside `unshare -n`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.ray_head import LocalRayHead, private_network
from tests.harness.conftest import git

pytest.importorskip("ray.job_submission", reason="Ray is not installed: the cluster extra (`make setup`)")
CLUSTER_SECRET = "CLUSTER_SECRET_TOKEN"  # set on the cluster's side: a scrubbed job must not see it


@pytest.fixture(scope="session")
def ray_head() -> Iterator[LocalRayHead]:
    if not private_network():
        pytest.skip("the Ray head runs only inside a private network namespace: `make test-ray` "
                    "(unshare -n, then ip link set lo up)")
    # one logical GPU: jobs that reserve it are scheduled and their GPU-hours counted, on a CPU-only machine
    with LocalRayHead(num_cpus=2, num_gpus=1, env={CLUSTER_SECRET: "s3cret"}) as head:
        yield head


@pytest.fixture
def cluster(ray_head: LocalRayHead, monkeypatch: pytest.MonkeyPatch) -> LocalRayHead:
    """The head, with RAY_ADDRESS pointing ralph (in this process and its children) at it."""
    monkeypatch.setenv("RAY_ADDRESS", ray_head.address)
    from harness.judge import jobs

    jobs._clusters.clear()
    return ray_head


def make_repo(root: Path, plan: dict[str, Any], agent: dict[str, Any]) -> tuple[Path, Path]:
    """A committed repository with `plan` as PRD.json, and a replay script for the agent."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    (repo / ".gitignore").write_text(".ralph/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    script = root / "script.yaml"
    script.write_text(yaml.safe_dump({"features": agent}))
    return repo, script


def ralph(repo: Path, *args: str, script: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from harness.cli import main; main()", *args, "-C", str(repo)]
    if script is not None:
        cmd += ["--agent", "replay", "--agent-cmd", str(script), "--no-input"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def state(repo: Path) -> dict[str, Any]:
    return json.loads((repo / ".ralph" / "state.json").read_text())


def submitted(cluster: LocalRayHead, feature: str) -> list[Any]:
    """Every job the cluster was ever given for `feature` (whatever ralph's ledger says)."""
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(cluster.address).list_jobs()
    return [j for j in jobs if (j.metadata or {}).get("ralph_feature") == feature]
