"""`ralph run`: the loop end to end, with the real anthropic client against a fake Messages API,
fake agent CLIs, a scripted agent, budgets, and Ctrl-C with resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from harness.agents import make_agent
from harness.agents.anthropic import RetryPolicy
from harness.books.ledger import Ledger
from harness.books.progress import ProgressLog
from harness.cli import app
from harness.errors import ExitCode
from harness.judge.checktree import check_phase
from harness.project import Project
from harness.run.loop import AgentUnusable, BudgetExhausted, EntryNotMet, PhaseRunner
from harness.sandbox.environment import Environment, bwrap_available
from harness.settings import RunSettings
from harness.views.live import RunView
from tests.fakes import cli_agents
from tests.fakes.anthropic_server import FakeAnthropic, Reply, bash, edit, message, overloaded, rate_limited, text, turn
from tests.harness.conftest import commit_plan, git

# FEAT-A passes when a.txt exists; FEAT-B needs score.py to write score.json with score >= 0.5
# (the harness runs score.py itself; the file the gate reads never comes from the agent).
PLAN: dict[str, Any] = {
    "version": 1,
    "project": "loop-test",
    "defaults": {"max_attempts": 3, "attempt_timeout_s": 60, "check_timeout_s": 30},
    "phases": [
        {"id": 1, "name": "Build", "exit": [{"name": "exit ok", "run": "test -f a.txt"}], "approval": True},
        {"id": 2, "name": "Extend", "entry": [{"name": "score exists", "run": "test -f score.py"}],
         "approval": False},
    ],
    "features": [
        {"id": "FEAT-A", "phase": 1, "title": "write a", "verify": [{"name": "a exists", "run": "test -f a.txt"}]},
        {"id": "FEAT-B", "phase": 1, "title": "score well", "depends_on": ["FEAT-A"],
         "verify": [{"name": "score", "run": "python score.py"},
                    {"name": "score gate", "metric": {"file": "score.json", "key": "score", "op": ">=",
                                                       "value": 0.5}}]},
        {"id": "FEAT-C", "phase": 2, "title": "write c", "verify": [{"name": "c exists", "run": "test -f c.txt"}]},
    ],
}


def score_script(value: float) -> str:
    return f"import json\njson.dump({{'score': {value}}}, open('score.json', 'w'))\n"


@pytest.fixture
def plan_repo(repo: Path) -> Path:
    return commit_plan(repo, PLAN)


def runner_for(repo: Path, agent, phase: int = 1, **settings: Any) -> PhaseRunner:
    view = RunView(Console(file=open(os.devnull, "w")), f"phase {phase}")
    return PhaseRunner(Project.open(repo), phase, agent, RunSettings(**settings), view)


def commits(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def progress_kinds(repo: Path) -> list[str]:
    return [block.split(" | ")[1] for block in ProgressLog(repo).blocks()]


# ------------------------------------------------------------------ the anthropic backend


def scripted_api() -> tuple[list[str], Any]:
    """Replies by feature (found in the system prompt) and attempt; a 529 and a 429 on the way."""
    served: list[str] = []

    def reply(body: dict[str, Any], index: int) -> Reply:
        system = "".join(block["text"] for block in body["system"])
        prompt = body["messages"][0]["content"][0]["text"]
        n = turn(body)
        if "# Feature FEAT-A" in system:
            key = f"A{n}"
            step = [message(edit(command="create", path="a.txt", file_text="a\n")), message(text("wrote a.txt"))]
        elif "attempt 1 of" in prompt:
            key = f"B1-{n}"
            step = [message(edit(command="create", path="score.py", file_text=score_script(0.2))),
                    message(text("score.py written"))]
        else:
            key = f"B2-{n}"
            step = [message(bash(f"cat > score.py <<'EOF'\n{score_script(0.9)}EOF")),
                    message(text("fixed the score"))]
        if key in ("B1-0", "B2-0") and key not in served:  # each first call is refused once
            served.append(key)
            return overloaded() if key == "B1-0" else rate_limited(0.01)
        served.append(key)
        return step[n]

    return served, reply


def test_whole_phase_through_the_messages_api(plan_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served, reply = scripted_api()
    with FakeAnthropic(reply) as api:
        for k, v in api.env().items():
            monkeypatch.setenv(k, v)
        agent = make_agent("anthropic", model="claude-sonnet-4-6", retry=RetryPolicy(max_retries=3, backoff_s=0.01))
        outcome = runner_for(plan_repo, agent).run()

    assert outcome.code == ExitCode.AWAITING_APPROVAL, outcome.message
    assert served.count("B1-0") == 2 and served.count("B2-0") == 2  # refused once, then retried
    # the failed verification reached the second attempt's prompt
    second = [r for r in api.requests if "attempt 2 of" in r["messages"][0]["content"][0]["text"]][0]
    assert "score gate" in second["messages"][0]["content"][0]["text"]
    assert "0.2" in second["messages"][0]["content"][0]["text"]
    # the stable part is cached
    assert second["system"][0]["cache_control"] == {"type": "ephemeral"}

    ledger = Ledger(plan_repo)
    assert ledger.feature("FEAT-A").status == "passing" and ledger.feature("FEAT-A").attempts == 1
    assert ledger.feature("FEAT-B").status == "passing" and ledger.feature("FEAT-B").attempts == 2
    assert ledger.feature("FEAT-B").cost_usd > 0
    assert commits(plan_repo)[:2] == ["feat(FEAT-B): score well", "feat(FEAT-A): write a"]
    trailers = git(plan_repo, "log", "-1", "--format=%(trailers)")
    assert "Ralph-Feature: FEAT-B" in trailers and "Ralph-Attempt: 2" in trailers
    assert "Ralph-Metrics: score=0.9" in trailers
    assert progress_kinds(plan_repo).count("attempt") == 3
    assert progress_kinds(plan_repo)[-1] == "approval-request"
    assert (plan_repo / ".ralph/approvals/phase-1.request.json").is_file()
    assert json.loads((plan_repo / "PRD.json").read_text())["features"][1]["passes"] is True

    # phase 2 cannot start before the human gate, and can after it
    with pytest.raises(EntryNotMet, match="phase 1 .* is not approved"):
        runner_for(plan_repo, make_agent("replay", script=_replay(plan_repo, {})), phase=2).check_entry()
    result = CliRunner().invoke(app, ["approve", "1", "--by", "tester", "-C", str(plan_repo)])
    assert result.exit_code == 0, result.output
    assert "ralph/phase-1-approved" in git(plan_repo, "tag")
    script = _replay(plan_repo, {"FEAT-C": [[{"write": "c.txt", "content": "c\n"}]]})
    outcome = runner_for(plan_repo, make_agent("replay", script=script), phase=2).run()
    assert outcome.code == ExitCode.OK, outcome.message
    assert commits(plan_repo)[0] == "feat(FEAT-C): write c"


# ------------------------------------------------------------------ agent CLIs and guards


def _replay(repo: Path, features: dict[str, Any]) -> Path:
    path = repo.parent / "script.yaml"
    path.write_text(yaml.safe_dump({"features": features}))
    return path


def test_cli_agent_that_does_the_work(plan_repo: Path, tmp_path: Path) -> None:
    agent = make_agent("command", agent_cmd=cli_agents.worker(tmp_path, "a.txt"))
    runner = runner_for(plan_repo, agent, max_iterations=1)
    runner.only = runner.project.prd.feature("FEAT-A")
    assert runner.run().code == ExitCode.OK
    assert commits(plan_repo)[0] == "feat(FEAT-A): write a"


def test_hanging_cli_is_killed_with_its_grandchildren(plan_repo: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    agent = make_agent("command", agent_cmd=cli_agents.hanger(tmp_path, pid_file))
    # none: the grandchild's pid file is under the host's /tmp (bwrap's case: test_judge_loop's daemons test)
    runner = runner_for(plan_repo, agent, attempt_timeout_s=1.5, max_attempts=1, sandbox="none")
    started = time.monotonic()
    outcome = runner.run()
    assert time.monotonic() - started < 20
    assert outcome.code == ExitCode.BLOCKED and "FEAT-A" in outcome.blocked
    assert not cli_agents.alive(int(pid_file.read_text()))
    assert "agent status: timeout" in (plan_repo / "progress.txt").read_text()


def test_cli_that_marks_its_own_feature_passing_is_caught(plan_repo: Path, tmp_path: Path) -> None:
    agent = make_agent("command", agent_cmd=cli_agents.prd_tamperer(tmp_path))
    before = (plan_repo / "PRD.json").read_text()
    outcome = runner_for(plan_repo, agent, max_attempts=1, sandbox="none").run()  # the guard (a sandbox: read-only)
    assert outcome.code == ExitCode.BLOCKED
    assert (plan_repo / "PRD.json").read_text() == before  # restored
    log = (plan_repo / "progress.txt").read_text()
    assert "verdict: tampering" in log and "PRD.json" in log
    assert Ledger(plan_repo).feature("FEAT-A").status == "blocked"
    assert commits(plan_repo) == ["plan"]


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap cannot create namespaces here")
def test_cli_writing_outside_the_repository_is_refused_in_the_sandbox(plan_repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "escape.txt"
    target.parent.mkdir()
    agent = make_agent("command", agent_cmd=cli_agents.outside_writer(tmp_path, target))
    outcome = runner_for(plan_repo, agent, max_attempts=1, sandbox="bwrap").run()
    assert not target.exists()
    assert outcome.code == ExitCode.BLOCKED


def test_agent_that_fails_without_changing_anything_stops_the_run(plan_repo: Path, tmp_path: Path) -> None:
    agent = make_agent("command", agent_cmd=cli_agents.failer(tmp_path, code=3))
    with pytest.raises(AgentUnusable, match="exit"):
        runner_for(plan_repo, agent).run()
    assert Ledger(plan_repo).feature("FEAT-A").attempts == 1  # no second attempt burned
    log = (plan_repo / "progress.txt").read_text()
    assert "agent status: error" in log and "| agent-failed | FEAT-A" in log
    ProgressLog(plan_repo).audit()


def test_missing_agent_cli_is_a_clear_error_through_the_cli(plan_repo: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--phase", "1", "--agent", "command", "--agent-cmd",
                                      "no-such-agent-cli {prompt_file}", "--no-input", "-C", str(plan_repo)])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "no-such-agent-cli" in result.output and "Traceback" not in result.output


def test_agent_error_after_changes_is_judged_by_the_checks(plan_repo: Path) -> None:
    """An agent that crashes after doing the work still gets its work verified."""
    agent = make_agent("command", agent_cmd="sh -c 'echo a > a.txt; exit 7'")
    runner = runner_for(plan_repo, agent)
    runner.only = runner.project.prd.feature("FEAT-A")
    assert runner.run().code == ExitCode.OK
    assert "agent status: error" in (plan_repo / "progress.txt").read_text()


def test_agent_written_metric_file_does_not_count(plan_repo: Path) -> None:
    """The gate's file is set aside before the checks; only score.py's own output is read."""
    script = _replay(plan_repo, {
        "FEAT-A": [[{"write": "a.txt", "content": "a"}]],
        "FEAT-B": [[{"write": "score.py", "content": "print('no file written')\n"},
                    {"write": "score.json", "content": '{"score": 1.0}'}]],
    })
    outcome = runner_for(plan_repo, make_agent("replay", script=script), max_attempts=1).run()
    assert outcome.code == ExitCode.BLOCKED
    evidence = {e.check: e for e in Ledger(plan_repo).feature("FEAT-B").last_evidence}
    assert not evidence["score gate"].passed and "score.json" in evidence["score gate"].detail


# ------------------------------------------------------------------ budgets


def test_cost_budget_stops_the_run_with_state_intact(plan_repo: Path) -> None:
    costly = [{"spend": {"cost_usd": 0.6}}]
    script = _replay(plan_repo, {"FEAT-A": [costly + [{"write": f"x{i}.txt", "content": "x"}] for i in range(3)]})
    runner = runner_for(plan_repo, make_agent("replay", script=script), max_cost_usd=1.0)
    with pytest.raises(BudgetExhausted, match="max-cost-usd 1"):
        runner.run()
    assert runner.spend.iterations == 2
    assert Ledger(plan_repo).feature("FEAT-A").attempts == 2  # the state file still loads and is right
    ProgressLog(plan_repo).audit()  # untampered, appendable
    assert progress_kinds(plan_repo)[-1] == "budget"


def test_iteration_budget_exit_code_through_the_cli(plan_repo: Path) -> None:
    script = _replay(plan_repo, {"FEAT-A": [[{"write": f"x{i}.txt", "content": "x"}] for i in range(3)]})
    result = CliRunner().invoke(app, ["run", "--phase", "1", "--agent", "replay", "--agent-cmd", str(script),
                                      "--max-iterations", "1", "--no-input", "-C", str(plan_repo)])
    assert result.exit_code == ExitCode.BUDGET_EXHAUSTED, result.output
    assert "max-iterations 1" in result.output
    assert Ledger(plan_repo).feature("FEAT-A").attempts == 1


def test_same_failure_twice_blocks(plan_repo: Path) -> None:
    script = _replay(plan_repo, {"FEAT-A": [[{"write": "a.txt", "content": "a"}]],
                                 "FEAT-B": [[{"write": "score.py", "content": score_script(0.1)}],
                                            [{"write": "notes.txt", "content": "tried"}]]})
    outcome = runner_for(plan_repo, make_agent("replay", script=script)).run()
    assert "same check failed with the same output twice" in outcome.blocked["FEAT-B"]
    assert Ledger(plan_repo).feature("FEAT-B").attempts == 2


def test_dry_run_prints_prompts_and_runs_nothing(plan_repo: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--phase", "1", "--dry-run", "-C", str(plan_repo)])
    assert result.exit_code == 0, result.output
    assert "FEAT-B" in result.output and "score.json key `score`" in result.output
    assert not (plan_repo / "progress.txt").exists() or "attempt" not in (plan_repo / "progress.txt").read_text()
    assert Ledger(plan_repo).feature("FEAT-A").attempts == 0


# ------------------------------------------------------------------ Ctrl-C and resume


def interrupted_when(cmd: list[str], marker: Path, *, wait_s: float, env: dict[str, str] | None = None) -> str:
    """Run `cmd`, send it SIGINT once `marker` exists (or after `wait_s`), and return its output; it must exit
    as interrupted."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + wait_s
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, out
    return out


def test_sigint_mid_attempt_then_resume_without_duplicates(plan_repo: Path) -> None:
    resumed = plan_repo.parent / "resumed"
    script = _replay(plan_repo, {
        "FEAT-A": [[{"run": f"test -f {resumed} || (touch started && sleep 60)"}, {"write": "a.txt", "content": "a"}]],
        "FEAT-B": [[{"write": "score.py", "content": score_script(0.8)}]],
    })
    cmd = [sys.executable, "-c", "from harness.cli import main; main()", "run", "--phase", "1",
           "--agent", "replay", "--agent-cmd", str(script), "--no-input", "--sandbox", "none",  # `resumed` is
           "-C", str(plan_repo)]  # outside the repository, where a sandboxed command cannot see it
    interrupted_when(cmd, plan_repo / "started", wait_s=30)
    assert progress_kinds(plan_repo)[-1] == "interrupted"
    assert commits(plan_repo) == ["plan"]

    resumed.touch()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == ExitCode.AWAITING_APPROVAL, rerun.stdout + rerun.stderr
    assert commits(plan_repo) == ["feat(FEAT-B): score well", "feat(FEAT-A): write a", "plan"]
    kinds = progress_kinds(plan_repo)
    assert kinds.count("interrupted") == 1 and kinds.count("attempt") == 2
    assert Ledger(plan_repo).feature("FEAT-A").attempts == 1  # Ctrl-C is not the agent's failure


def test_sigint_during_the_checks_then_the_rerun_checks_the_kept_tree_first(plan_repo: Path) -> None:
    """Issue 24 (minor): after Ctrl-C during verification the rerun ran the agent again; it now checks the tree
    the interrupted verification kept, and the agent is not run when that passes."""
    parent, resumed = plan_repo.parent, plan_repo.parent / "resumed"
    slow_score = (f"import json, pathlib, time\nif not pathlib.Path({str(resumed)!r}).exists():\n"
                  f"    pathlib.Path({str(parent / 'checking')!r}).touch()\n    time.sleep(60)\n"
                  "json.dump({'score': 0.8}, open('score.json', 'w'))\n")
    script = _replay(plan_repo, {
        "FEAT-A": [[{"write": "a.txt", "content": "a"}]],
        "FEAT-B": [[{"run": f"echo ran >> {parent / 'agent-runs'}"}, {"write": "score.py", "content": slow_score}]],
    })
    cmd = [sys.executable, "-c", "from harness.cli import main; main()", "run", "--phase", "1",
           "--agent", "replay", "--agent-cmd", str(script), "--no-input", "-C", str(plan_repo),
           "--sandbox", "none"]  # the agent writes a marker under the host's /tmp, which a sandbox hides
    # the markers are outside the repository: ralph's temporary directory (which checks see as their own, empty,
    # one: environment.private_tmp) is put elsewhere, so the check sees them
    env = {**os.environ, "TMPDIR": str(parent / "ralph-tmp")}
    (parent / "ralph-tmp").mkdir()
    out = interrupted_when(cmd, parent / "checking", wait_s=60, env=env)
    assert "checks the tree it kept again" in out
    resumed.touch()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert rerun.returncode == ExitCode.AWAITING_APPROVAL, rerun.stdout + rerun.stderr
    assert (parent / "agent-runs").read_text() == "ran\n"  # the agent ran once, before the interruption
    assert commits(plan_repo)[0] == "feat(FEAT-B): score well"
    assert Ledger(plan_repo).feature("FEAT-B").status == "passing"
    assert "checked again" in (plan_repo / "progress.txt").read_text()


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap cannot create namespaces here")
def test_checks_under_the_sandbox_cannot_write_the_judge(plan_repo: Path) -> None:
    project = Project.open(plan_repo)
    project.environment = Environment("bwrap")
    check = project.prd.features[0].verify[0].model_copy(update={"run": "echo '{}' > PRD.json"})
    evidence = check_phase(project, [check], plan_repo / ".ralph" / "runs" / "t", None)
    assert not evidence[0].passed and "Read-only file system" in evidence[0].output_tail
    allowed = check.model_copy(update={"run": "echo ok > fine.txt && test -f fine.txt"})
    assert check_phase(project, [allowed], plan_repo / ".ralph" / "runs" / "t", None)[0].passed


def test_a_parallel_track_needs_no_earlier_approval(plan_repo: Path) -> None:
    plan = json.loads((plan_repo / "PRD.json").read_text())
    plan["phases"][1]["after"] = []
    (plan_repo / "PRD.json").write_text(json.dumps(plan))
    (plan_repo / "score.py").write_text(score_script(1))
    git(plan_repo, "add", "-A")
    git(plan_repo, "commit", "-qm", "a parallel track")
    script = _replay(plan_repo, {"FEAT-C": [[{"write": "c.txt", "content": "c\n"}]]})
    assert runner_for(plan_repo, make_agent("replay", script=script), phase=2).run().code == ExitCode.OK
    plan["phases"][1]["after"] = [7]
    (plan_repo / "PRD.json").write_text(json.dumps(plan))
    result = CliRunner().invoke(app, ["validate", "-C", str(plan_repo)])
    assert result.exit_code == 2 and "phases[1].after[0]: phase 7 does not exist" in result.output


def test_harness_records_never_count_as_agent_changes(plan_repo: Path) -> None:
    from harness.run.loop import tree_fingerprint, uncommitted

    before = tree_fingerprint(plan_repo)
    (plan_repo / ".ralph").mkdir(exist_ok=True)
    (plan_repo / ".ralph" / "state.json").write_text("{}")
    git(plan_repo, "add", "-f", ".ralph/state.json")  # a repository may choose to track its ledger
    (plan_repo / "progress.txt").write_text("log\n")
    assert tree_fingerprint(plan_repo) == before and uncommitted(plan_repo) == []
    (plan_repo / "new.py").write_text("x = 1\n")
    assert tree_fingerprint(plan_repo) != before and uncommitted(plan_repo) == ["new.py"]
