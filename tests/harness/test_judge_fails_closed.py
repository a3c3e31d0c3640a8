"""Judging fails closed: whatever goes wrong while ralph handles what the agent produced — its output,
the files its code wrote, the gates that read them — is a failed attempt on the record (counted, with
a progress entry), never a refund and never a crash. Each test is an attack by a scripted agent.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.books.ledger import Ledger
from harness.cli import app
from harness.errors import ExitCode
from tests.harness.conftest import git

PLAN: dict[str, Any] = {
    "version": 1,
    "project": "closed",
    "defaults": {"max_attempts": 1, "attempt_timeout_s": 60, "check_timeout_s": 30},
    "phases": [{"id": 1, "name": "Train", "approval": False}],
    "features": [
        {"id": "F-1", "phase": 1, "title": "train", "verify": [
            {"name": "train", "run": "python train.py"},
            {"name": "gate", "metric": {"file": "results.json", "key": "score", "op": ">=", "value": 0.5}}]},
    ],
}


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "PRD.json").write_text(json.dumps(PLAN, indent=2))
    (repo / ".gitignore").write_text(".ralph/\nresults.json\n")
    (repo / "train.py").write_text('import json\njson.dump({"score": 0.1}, open("results.json", "w"))\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "setup")
    return repo


def run_agent(repo: Path, tmp: Path, body: str, *options: str) -> Any:
    """`ralph run` with a command agent (a bash script) and any further `options`."""
    path = tmp / f"agent-{random.randrange(10**9)}.sh"
    path.write_text("#!/bin/bash\ncat > /dev/null\n" + body)
    path.chmod(0o755)
    return CliRunner().invoke(app, ["run", "--agent", "command", "--agent-cmd", str(path), "--no-input",
                                    "--phase", "1", "-C", str(repo), *options])


def assert_failed_on_the_record(repo: Path, result: Any, words: str) -> None:
    """The attempt was counted and recorded as failing, with a progress entry, and ralph did not crash."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == ExitCode.BLOCKED, result.output
    fs = Ledger(repo).feature("F-1")
    assert fs.attempts == 1 and fs.status == "blocked", fs
    assert any(not e.passed and words in e.detail for e in fs.last_evidence), fs.last_evidence
    progress = (repo / "progress.txt").read_text()
    assert "attempt" in progress and words in progress
    assert json.loads((repo / "PRD.json").read_text())["features"][0].get("passes", False) is False


def writes_results(text: str) -> str:
    """An agent whose train.py writes `text` as results.json."""
    return f"cat > train.py <<'PY'\nopen('results.json', 'w').write({text!r})\nPY\n"


def test_a_score_too_large_for_a_float_is_a_failed_attempt(project: Path, tmp_path: Path) -> None:
    result = run_agent(project, tmp_path, writes_results('{"score": 1' + "0" * 400 + "}"))
    assert_failed_on_the_record(project, result, "not a finite number")


def test_json_nested_too_deep_is_a_failed_attempt(project: Path, tmp_path: Path) -> None:
    result = run_agent(project, tmp_path, writes_results('{"score": ' + "[" * 100_000 + "]" * 100_000 + "}"))
    assert_failed_on_the_record(project, result, "results.json")


def test_a_huge_metric_file_is_a_failed_attempt_not_a_memory_blow_up(project: Path, tmp_path: Path) -> None:
    body = "cat > train.py <<'PY'\nwith open('results.json', 'w') as f:\n    f.write('{\"pad\": \"' + 'x' * (80 << 20) + '\", \"score\": 0.9}')\nPY\n"
    result = run_agent(project, tmp_path, body)
    assert_failed_on_the_record(project, result, "larger than")


def test_a_score_that_looks_like_markup_is_a_failed_gate_not_a_crash(project: Path, tmp_path: Path) -> None:
    result = run_agent(project, tmp_path, writes_results('{"score": "[/oops]"}'))
    assert_failed_on_the_record(project, result, "not a number")
    assert "[/oops]" in (project / "progress.txt").read_text()


def test_agent_output_that_looks_like_markup_does_not_stall_the_attempt(project: Path, tmp_path: Path) -> None:
    """The agent only prints text that Rich would read as closing tags; its work is honest and passes."""
    started = time.monotonic()
    result = run_agent(project, tmp_path, "for i in $(seq 50); do echo 'editing the [/api] route handler [/]'; done\n"
                       "echo 'import json; json.dump({\"score\": 0.9}, open(\"results.json\", \"w\"))' > train.py\n")
    assert result.exit_code == ExitCode.OK, result.output
    assert time.monotonic() - started < 40  # the agent was not left blocked on a full pipe until the timeout
    assert Ledger(project).feature("F-1").status == "passing"


def test_an_error_inside_the_judge_is_a_failed_attempt_on_the_record(project: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the cause, an exception while judging the agent's work is recorded as that attempt's failure."""
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the gate reader broke")

    monkeypatch.setattr("harness.judge.checks.run_metric_check", broken)
    result = run_agent(project, tmp_path, "echo work > notes.txt\n")
    assert_failed_on_the_record(project, result, "the gate reader broke")


def test_the_output_pump_keeps_draining_when_the_display_fails(tmp_path: Path) -> None:
    """A line callback that raises (a display choking on the agent's text) must not stop the reading: the
    command runs to its end instead of blocking on a full pipe until its timeout."""
    from harness.sandbox.proc import run_in_group

    def choke(line: str) -> None:
        raise ValueError(f"cannot show {line!r}")

    started = time.monotonic()
    res = run_in_group("for i in $(seq 20000); do echo 'editing the [/api] route handler'; done; echo end",
                       tmp_path, timeout_s=30, on_line=choke)
    assert res.returncode == 0 and not res.timed_out and res.output_tail.rstrip().endswith("end")
    assert time.monotonic() - started < 20


def test_the_live_panel_shows_markup_as_text() -> None:
    """On a terminal the panel renders what the agent and the checks said as plain text."""
    from io import StringIO

    from rich.console import Console

    from harness.books.records import Evidence
    from harness.views.live import RunView

    out = StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with RunView(console, "1: Train [/x]") as view:
        view.attempt_started("F-1", 1, 3)
        view.line("editing the [/api] route handler")
        view.say("a reason with [/oops] in it", style="bold red")
        view.finished(Evidence(check="gate [/c]", kind="metric", verdict="fail", detail="'score' is \"[/oops]\"",
                               duration_s=0.0))
    text = out.getvalue()
    assert "[/oops]" in text and "[/c]" in text


def test_an_agent_backend_that_raises_is_a_counted_attempt_judged_on_its_tree(project: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend breaking on what the agent produced (its report, its output) is not an outage: the attempt
    counts, its tree is judged, and the progress entry says what broke."""
    from harness.agents.command import CommandAgent

    def broken(self: Any, task: Any, budget: Any) -> Any:
        (task.workdir / "train.py").write_text('import json\njson.dump({"score": 0.9}, open("results.json", "w"))\n')
        raise RuntimeError("the report parser broke")

    monkeypatch.setattr(CommandAgent, "run", broken)
    result = run_agent(project, tmp_path, "true\n")
    assert result.exit_code == ExitCode.OK, result.output  # the work it left passes, and is committed
    fs = Ledger(project).feature("F-1")
    assert fs.attempts == 1 and fs.status == "passing"
    assert "the report parser broke" in (project / "progress.txt").read_text()


def test_terminal_control_sequences_from_the_agent_never_reach_the_records_or_the_screen(project: Path,
                                                                                        tmp_path: Path) -> None:
    """The agent and its check print sequences that clear the screen, retitle the window and paint a fake
    green verdict: ralph keeps the words and drops the control sequences, in its records and its views."""
    evil = r"\033[2J\033]0;pwned\007\033[32mPASS all checks\033[0m"
    result = run_agent(project, tmp_path, f"printf '{evil}\\n'\n"
                       f"echo \"import sys; print('{evil}'); sys.exit(1)\" > train.py\n")
    assert result.exit_code == ExitCode.BLOCKED, result.output
    assert "\x1b" not in result.output and "PASS all checks" in result.output
    assert "\x1b" not in (project / "progress.txt").read_text()
    assert all("\x1b" not in e.output_tail for e in Ledger(project).feature("F-1").last_evidence)
    shown = CliRunner().invoke(app, ["show", "F-1", "-C", str(project)])
    assert shown.exit_code == 0 and "\x1b" not in shown.output, shown.output
