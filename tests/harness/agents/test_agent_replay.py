from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from harness.agents.base import Budget, Task
from harness.agents.replay import ReplayAgent, ReplayScriptError
from tests.fakes.cli_agents import alive

SCRIPT = {
    "features": {
        "FEAT-1": [
            [
                {"write": "src/new.py", "content": "VALUE = 1\n"},
                {"run": "python3 -c 'import sys; sys.path.insert(0, \"src\"); import new; print(new.VALUE)'"},
                {"write": "PRD.json", "content": "{}"},
                {"say": "added new.py"},
            ],
            [
                {"edit": "src/new.py", "old": "VALUE = 1", "new": "VALUE = 2"},
                {"spend": {"input_tokens": 1000, "output_tokens": 100, "cost_usd": 0.25}},
                {"say": "bumped VALUE"},
            ],
        ]
    }
}


def write_script(tmp_path: Path, script: object, name: str = "script.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(script) if name.endswith(".json") else yaml.safe_dump(script))
    return path


def test_attempts_play_in_order_through_the_tools(tmp_path: Path, repo: Path, make_task: Callable[..., Task]) -> None:
    agent = ReplayAgent(write_script(tmp_path, SCRIPT))
    events = []
    first = agent.run(make_task(attempt=1, on_event=events.append), Budget(timeout_s=30))
    assert first.status == "completed" and first.turns == 4 and first.summary == "added new.py"
    assert (repo / "src" / "new.py").read_text() == "VALUE = 1\n"
    assert '"passes": false' in (repo / "PRD.json").read_text()  # the protected write was refused
    records = [json.loads(line) for line in first.transcript_path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["start", "turn", "turn", "turn", "turn", "end"]
    assert records[2]["output"] == "1\n[exit code 0]"
    assert records[3]["is_error"] and "protected" in records[3]["output"]
    assert [e.action for e in events][-1] == "say: added new.py"

    second = agent.run(make_task(attempt=2), Budget(timeout_s=30))
    assert second.status == "completed" and second.usage.cost_usd == 0.25 and second.usage.input_tokens == 1000
    assert (repo / "src" / "new.py").read_text() == "VALUE = 2\n"


def test_json_scripts_work_too(tmp_path: Path, repo: Path, make_task: Callable[..., Task]) -> None:
    agent = ReplayAgent(write_script(tmp_path, SCRIPT, "script.json"))
    assert agent.run(make_task(), Budget(timeout_s=30)).status == "completed"


def test_missing_attempt_is_an_error_result(tmp_path: Path, make_task: Callable[..., Task]) -> None:
    agent = ReplayAgent(write_script(tmp_path, SCRIPT))
    result = agent.run(make_task(attempt=3), Budget(timeout_s=30))
    assert result.status == "error" and "2 attempt(s) for FEAT-1" in (result.error or "")
    other = agent.run(make_task(feature_id="FEAT-9"), Budget(timeout_s=30))
    assert other.status == "error" and "FEAT-9" in (other.error or "")


def test_turn_cap_and_spend_cap_stop_the_attempt(tmp_path: Path, repo: Path, make_task: Callable[..., Task]) -> None:
    agent = ReplayAgent(write_script(tmp_path, SCRIPT))
    capped = agent.run(make_task(attempt=1), Budget(timeout_s=30, max_turns=1))
    assert capped.status == "turn_limit" and capped.turns == 1
    spent = agent.run(make_task(attempt=2), Budget(timeout_s=30, max_cost_usd=0.1))
    assert spent.status == "budget" and spent.turns == 2 and spent.summary == ""


def test_a_command_past_the_time_limit_stops_the_attempt(tmp_path: Path, make_task: Callable[..., Task]) -> None:
    script = {"features": {"FEAT-1": [[{"run": "sleep 30"}, {"say": "never"}]]}}
    result = ReplayAgent(write_script(tmp_path, script)).run(make_task(), Budget(timeout_s=0.5))
    assert result.status == "timeout" and result.turns == 1 and result.summary == ""


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (["not", "a", "mapping"], "top-level 'features'"),
        ({"features": {"F": [{"write": "a"}]}}, "list of attempts"),
        ({"features": {"F": [[{"delete": "a"}]]}}, "exactly one of"),
        ({"features": {"F": [[{"write": "a"}]]}}, "needs a string 'content'"),
        ({"features": {"F": [[{"run": "ls", "timeout": 3}]]}}, "unknown field(s) ['timeout']"),
        ({"features": {"F": [[{"spend": {"dollars": 1}}]]}}, "spend takes"),
    ],
)
def test_bad_scripts_say_where(tmp_path: Path, script: object, message: str) -> None:
    with pytest.raises(ReplayScriptError, match=r"script\.yaml") as info:
        ReplayAgent(write_script(tmp_path, script))
    assert message in str(info.value)


def test_unreadable_script_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("features: [unclosed")
    with pytest.raises(ReplayScriptError, match="cannot read replay script"):
        ReplayAgent(tmp_path / "broken.yaml")


def test_ctrl_c_stops_the_command_and_returns_interrupted(
    tmp_path: Path, repo: Path, make_task: Callable[..., Task]
) -> None:
    script = {"features": {"FEAT-1": [[{"run": "sleep 30 & echo $! > bg.pid; wait"}, {"say": "never"}]]}}
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        result = ReplayAgent(write_script(tmp_path, script)).run(make_task(), Budget(timeout_s=30))
    finally:
        timer.cancel()
    assert result.status == "interrupted" and result.summary == ""
    assert not alive(int((repo / "bg.pid").read_text()))
    records = [json.loads(line) for line in result.transcript_path.read_text().splitlines()]
    assert records[-1]["type"] == "end" and records[-1]["status"] == "interrupted"
