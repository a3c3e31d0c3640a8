"""The checks' inputs are not the agent's to change: under a sandbox, an ignored directory that exists before
the attempt (a dataset, a cache) is read-only to the agent and to the checks, unless the plan makes it an
output (`defaults.outputs`, or the directory of a file a gate reads).

The attack: the gate compares predictions with labels kept in an ignored `data/` directory; the agent
rewrites the labels to match its predictions (or plants the cached model a check loads), and the
honest-looking check passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.books.ledger import Ledger
from harness.sandbox.environment import bwrap_available
from tests.harness.conftest import git
from tests.harness.test_judge_fails_closed import PLAN, run_agent

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="read-only inputs need a sandbox (bubblewrap)")

SCORE = """import json, pathlib
labels = json.load(open("data/labels.json"))
cached = pathlib.Path("cache/predictions.json")
preds = json.load(open(cached)) if cached.exists() else [0] * len(labels)
acc = sum(p == y for p, y in zip(preds, labels)) / len(labels)
pathlib.Path("runs").mkdir(exist_ok=True)
json.dump({"score": acc}, open("runs/results.json", "w"))
"""


@pytest.fixture
def scored(repo: Path) -> Path:
    plan = {**PLAN, "features": [{"id": "F-1", "phase": 1, "title": "score", "verify": [
        {"name": "score", "run": "python score.py"},
        {"name": "gate", "metric": {"file": "runs/results.json", "key": "score", "op": ">=", "value": 0.9}}]}]}
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    (repo / ".gitignore").write_text(".ralph/\ndata/\ncache/\nruns/\n")
    (repo / "score.py").write_text(SCORE)
    (repo / "data").mkdir()
    (repo / "data" / "labels.json").write_text(json.dumps([1] * 10))
    (repo / "cache").mkdir()
    (repo / "runs").mkdir()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "setup")
    return repo


@pytest.mark.parametrize("attack", [
    "echo '[0,0,0,0,0,0,0,0,0,0]' > data/labels.json",  # the labels rewritten to match the predictions
    "echo '[1,1,1,1,1,1,1,1,1,1]' > cache/predictions.json",  # a cached model's output planted
])
def test_an_agent_cannot_change_what_the_checks_read(scored: Path, tmp_path: Path, attack: str) -> None:
    result = run_agent(scored, tmp_path, attack + "\n", "--sandbox", "bwrap")
    fs = Ledger(scored).feature("F-1")
    assert fs.status != "passing", result.output
    assert json.loads((scored / "data" / "labels.json").read_text()) == [1] * 10
    assert not (scored / "cache" / "predictions.json").exists()


def test_the_output_directory_stays_writable_for_the_agent_and_the_checks(scored: Path, tmp_path: Path) -> None:
    """Not an attack: `runs/` holds the gate's file, so it is an output; an honest agent that fixes score.py
    (and writes a scratch run of its own there) passes."""
    honest = "sed -i 's/\\[0\\] \\* len(labels)/[1] * len(labels)/' score.py\nmkdir -p runs/try && echo x > runs/try/log\n"
    result = run_agent(scored, tmp_path, honest, "--sandbox", "bwrap")
    assert Ledger(scored).feature("F-1").status == "passing", result.output
    assert (scored / "runs" / "try" / "log").exists()


def test_output_dirs_are_the_gates_directories_and_the_declared_ones() -> None:
    from harness.plan.prd import PRD
    plan = PRD.model_validate({**PLAN, "defaults": {**PLAN["defaults"], "outputs": ["wandb/"]}, "features": [
        {"id": "F-1", "phase": 1, "title": "t", "verify": [
            {"name": "g", "metric": {"file": "runs/s{seed}/results.json", "key": "k", "op": ">=", "value": 1},
             "seeds": [0, 1]},
            {"name": "top", "metric": {"file": "results.json", "key": "k", "op": ">=", "value": 1}}]}]})
    assert plan.output_dirs() == {"runs", "wandb"}


@pytest.mark.parametrize("allowed", [False, True])
def test_a_sandboxed_check_reaches_no_host_service_unless_the_plan_allows(repo: Path, tmp_path: Path,
                                                                         allowed: bool) -> None:
    """A check runs the agent's code: under a sandbox it has only its own loopback, so a service on the host
    (a Ray dashboard that would run its job outside any sandbox, say) is out of reach. `check_network` opts in."""
    import socket
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        plan = {**PLAN, "defaults": {**PLAN["defaults"], "check_network": allowed}, "features": [
            {"id": "F-1", "phase": 1, "title": "reach", "verify": [
                {"name": "reach the host", "run": f"python -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)\""}]}]}
        (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
        (repo / ".gitignore").write_text(".ralph/\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "setup")
        result = run_agent(repo, tmp_path, "echo work > notes.txt\n", "--sandbox", "bwrap")
        assert (Ledger(repo).feature("F-1").status == "passing") is allowed, result.output
    finally:
        server.close()


def test_ralph_verify_runs_the_checks_in_the_sandbox_ralph_run_would_use(repo: Path) -> None:
    """`ralph verify` runs the agent's code too: by default (auto) in the sandbox, so a check cannot write outside
    the repository's outputs (here: ralph's own .git); `--sandbox none` is the explicit way out."""
    from typer.testing import CliRunner

    from harness.cli import app
    plan = {**PLAN, "features": [{"id": "F-1", "phase": 1, "title": "t", "verify": [
        {"name": "write .git", "run": f"echo x > {repo}/.git/planted-by-a-check"}]}]}
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    (repo / ".gitignore").write_text(".ralph/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "setup")
    from harness.books.ledger import Ledger
    sandboxed = CliRunner().invoke(app, ["verify", "F-1", "-C", str(repo)])
    assert sandboxed.exit_code != 0 and not (repo / ".git" / "planted-by-a-check").exists(), sandboxed.output
    assert [e.verdict for e in Ledger(repo).feature("F-1").last_evidence] == ["fail"]  # the write itself failed
    # without a sandbox the write happens; the .git allow-list catches it afterwards (tampering, put back)
    unsandboxed = CliRunner().invoke(app, ["verify", "F-1", "--sandbox", "none", "-C", str(repo)])
    assert [e.verdict for e in Ledger(repo).feature("F-1").last_evidence] == ["pass", "fail"], unsandboxed.output
    assert "tampering" in unsandboxed.output and not (repo / ".git" / "planted-by-a-check").exists()
