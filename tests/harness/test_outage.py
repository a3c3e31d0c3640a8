"""An outage is not charged as an attempt (issue 24): an agent that changed nothing and reports an
API, connection, auth or rate-limit error is retried with backoff, then the run stops with the CLI's
own one-line error; its JSON report goes neither into progress.txt nor into the next prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.agents import make_agent, reports
from harness.books.ledger import Ledger
from harness.errors import ExitCode
from harness.run.loop import AgentUnusable, PhaseRunner
from tests.fakes import cli_agents
from tests.harness.test_loop import plan_repo, progress_kinds, runner_for  # noqa: F401 (fixture)

MESSAGE = "API Error: Connection error."


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PhaseRunner, "outage_backoff_s", (0.0, 0.0))


def only_a(repo: Path, command: str) -> PhaseRunner:
    # none: the fake CLIs count their calls in the test's directory, under the host's /tmp, which a sandbox hides
    runner = runner_for(repo, make_agent("command", agent_cmd=command), sandbox="none")
    runner.only = runner.project.prd.feature("FEAT-A")
    return runner


def test_outage_is_retried_then_stops_with_the_clis_own_line(plan_repo: Path, tmp_path: Path) -> None:
    runner = only_a(plan_repo, cli_agents.claude_outage(tmp_path, MESSAGE))
    with pytest.raises(AgentUnusable) as stopped:
        runner.run()
    said = str(stopped.value)
    assert MESSAGE in said and "3 times in a row" in said and "padding" not in said and len(said) < 400, said
    assert (tmp_path / "claude_outage.calls").read_text() == "3"  # the first try and two retries
    state = Ledger(plan_repo).feature("FEAT-A")
    assert state.attempts == 0 and state.last_evidence == []  # not charged; no checks were run
    assert progress_kinds(plan_repo).count("agent-outage") == 3
    log = (plan_repo / "progress.txt").read_text()
    assert f"error: agent command exited with 1: {MESSAGE}" in log and "session_id" not in log
    assert runner.spend.iterations == 0


def test_outage_then_recovery_counts_one_attempt(plan_repo: Path, tmp_path: Path) -> None:
    outcome = only_a(plan_repo, cli_agents.claude_outage(tmp_path, MESSAGE, outages=2, filename="a.txt")).run()
    assert outcome.code == ExitCode.OK
    state = Ledger(plan_repo).feature("FEAT-A")
    assert state.status == "passing" and state.attempts == 1
    prompts = list((plan_repo / ".ralph" / "runs").glob("*FEAT-A-1/prompt.md"))
    assert prompts and all("session_id" not in p.read_text() and "padding" not in p.read_text() for p in prompts)


def test_an_agent_that_changed_the_tree_is_judged_even_when_it_reports_an_outage(plan_repo: Path) -> None:
    outcome = only_a(plan_repo, f"sh -c 'echo a > a.txt; echo \"{MESSAGE}\" >&2; exit 1'").run()
    assert outcome.code == ExitCode.OK and Ledger(plan_repo).feature("FEAT-A").attempts == 1
    assert "agent-outage" not in progress_kinds(plan_repo)


@pytest.mark.parametrize("output, expected", [
    ('{"type":"result","is_error":true,"result":"Invalid API key · Please run /login"}',
     "Invalid API key · Please run /login"),
    ('{"type":"error","message":"unexpected status 401 Unauthorized: Missing bearer"}',
     "unexpected status 401 Unauthorized: Missing bearer"),
    ("Tokens: 1k sent\nlitellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached\n",
     "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached"),
    ("Traceback ...\nValueError: bad edit format\n", ""),
    ('{"type":"result","is_error":true,"result":"the model produced no tool call"}', ""),
])
def test_outage_line(output: str, expected: str) -> None:
    assert reports.outage_line("", output) == expected
