from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.agents import make_agent
from harness.agents.anthropic import AnthropicAgent, RetryPolicy
from harness.agents.base import Budget, Task
from harness.agents.pricing import Price, PriceTable
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    Reply,
    bash,
    edit,
    message,
    overloaded,
    rate_limited,
    server_error,
    text,
)

FAST = RetryPolicy(max_retries=3, backoff_s=0.01, max_backoff_s=1.0)
PRICES = PriceTable({"claude-test": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3)})


def agent(**kw: object) -> AnthropicAgent:
    return AnthropicAgent("claude-test", prices=PRICES, retry=FAST, **kw)  # type: ignore[arg-type]


@pytest.fixture
def api_env(no_anthropic_env: pytest.MonkeyPatch) -> Callable[[FakeAnthropic], None]:
    def point(api: FakeAnthropic) -> None:
        for name, value in api.env().items():
            no_anthropic_env.setenv(name, value)

    return point


def test_tool_loop_edits_runs_and_reports(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    script = [
        message(
            text("Creating the module."),
            edit(command="create", path="src/new.py", file_text="print(6 * 7)\n"),
            bash("python3 src/new.py"),
            input_tokens=1000,
            output_tokens=200,
            cache_creation_input_tokens=4000,
        ),
        message(edit(command="create", path="PRD.json", file_text="{}"), input_tokens=50, cache_read_input_tokens=4000),
        message(text("Done: src/new.py prints 42."), input_tokens=50, output_tokens=10, cache_read_input_tokens=4000),
    ]
    events = []
    with FakeAnthropic(script) as api:
        api_env(api)
        result = agent().run(make_task(on_event=events.append), Budget(timeout_s=60))
    assert result.status == "completed" and result.turns == 3
    assert result.summary == "Done: src/new.py prints 42."
    assert (repo / "src" / "new.py").read_text() == "print(6 * 7)\n"
    assert '"passes": false' in (repo / "PRD.json").read_text()

    first, second, third = api.requests
    assert first["model"] == "claude-test"
    assert first["tools"] == [
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    ]
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert first["system"][0]["text"].startswith("Principles: verify, do not guess.")
    assert first["messages"][0]["content"][-1]["text"] == "Implement FEAT-1."
    results = second["messages"][-1]["content"]
    tool_ids = [b["id"] for b in second["messages"][-2]["content"] if b["type"] == "tool_use"]
    assert [r["tool_use_id"] for r in results] == tool_ids
    assert results[1]["content"] == "42\n[exit code 0]" and results[1]["cache_control"] == {"type": "ephemeral"}
    refused = third["messages"][-1]["content"][0]
    assert refused["is_error"] is True and "protected" in refused["content"]
    assert "cache_control" not in second["messages"][-1]["content"][0]  # only the newest block is marked

    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (1100, 230)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (4000, 8000)
    expected = (1100 * 3.0 + 230 * 15.0 + 4000 * 3.75 + 8000 * 0.3) / 1e6
    assert usage.cost_usd == pytest.approx(expected)

    records = [json.loads(line) for line in result.transcript_path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["start", "turn", "turn", "turn", "end"]
    assert records[1]["tool_results"][1]["content"] == "42\n[exit code 0]"
    assert records[-1]["usage"]["cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert "bash: python3 src/new.py" in [e.action for e in events]
    assert events[-1].usage.cost_usd == pytest.approx(expected)


def test_retries_overload_rate_limit_and_server_errors(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    script = [overloaded(), rate_limited(retry_after=0.3), server_error(), message(text("ok"))]
    start = time.monotonic()
    with FakeAnthropic(script) as api:
        api_env(api)
        result = agent().run(make_task(), Budget(timeout_s=60))
    assert result.status == "completed" and len(api.requests) == 4
    assert time.monotonic() - start >= 0.3  # the retry-after was honoured
    retries = [json.loads(line) for line in result.transcript_path.read_text().splitlines() if '"retry"' in line]
    assert [r["error"][:8] for r in retries] == ["HTTP 529", "HTTP 429", "HTTP 500"]
    assert retries[1]["wait_s"] == 0.3


def test_retries_are_bounded(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    with FakeAnthropic(lambda body, i: overloaded()) as api:
        api_env(api)
        result = agent().run(make_task(), Budget(timeout_s=60))
    assert result.status == "error" and "after 3 retries" in (result.error or "") and "529" in (result.error or "")
    assert len(api.requests) == 4


def test_client_errors_are_not_retried(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    with FakeAnthropic([]) as api:
        api_env(api)
        result = agent().run(make_task(), Budget(timeout_s=60))
    assert result.status == "error" and "HTTP 400" in (result.error or "") and len(api.requests) == 1


def test_turn_cap(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    with FakeAnthropic(lambda body, i: message(bash(f"echo {i}"))) as api:
        api_env(api)
        result = agent().run(make_task(), Budget(timeout_s=60, max_turns=3))
    assert result.status == "turn_limit" and result.turns == 3 and len(api.requests) == 3


def test_cost_and_token_caps(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    endless = lambda body, i: message(bash("true"), input_tokens=10_000, output_tokens=1000)  # noqa: E731
    with FakeAnthropic(endless) as api:
        api_env(api)
        by_cost = agent().run(make_task(), Budget(timeout_s=60, max_cost_usd=0.1))
        by_tokens = agent().run(make_task(attempt=2), Budget(timeout_s=60, max_tokens=25_000))
    # each turn costs 10_000 * 3 / 1e6 + 1000 * 15 / 1e6 = $0.045: the third crosses $0.10
    assert by_cost.status == "budget" and by_cost.turns == 3 and by_cost.usage.cost_usd == pytest.approx(0.135)
    assert by_tokens.status == "budget" and by_tokens.turns == 3 and by_tokens.usage.total_tokens == 33_000


def test_time_limit_covers_a_stalled_api(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    def stall(body: dict, i: int) -> Reply:
        time.sleep(1.5)
        return message(text("too late"))

    start = time.monotonic()
    with FakeAnthropic(stall) as api:
        api_env(api)
        result = agent().run(make_task(), Budget(timeout_s=0.5))
    assert result.status == "timeout" and time.monotonic() - start < 3


def test_output_limit_asks_the_model_to_continue(repo: Path, make_task: Callable[..., Task], api_env) -> None:
    with FakeAnthropic([message(text("part one"), stop_reason="max_tokens"), message(text("part two"))]) as api:
        api_env(api)
        result = agent().run(make_task(), Budget(timeout_s=60))
    assert result.status == "completed" and result.summary == "part two"
    assert "continue" in api.requests[1]["messages"][-1]["content"][0]["text"]


def test_missing_api_key_is_a_clear_error(make_task: Callable[..., Task], no_anthropic_env) -> None:
    result = agent().run(make_task(), Budget(timeout_s=60))
    assert result.status == "error" and "ANTHROPIC_API_KEY is not set" in (result.error or "")


def test_unknown_model_is_priced_conservatively(tmp_path: Path) -> None:
    table = PriceTable.default()
    dearest, exact = table.lookup("some-new-model")
    assert not exact and dearest.output == max(p.output for p in table.prices.values())
    assert table.lookup("claude-sonnet-4-5-20250929") == (table.prices["claude-sonnet-4"], True)
    (tmp_path / "prices.toml").write_text('[models."claude-test"]\ninput = 1.0\noutput = 2.0\n')
    loaded = make_agent("anthropic", model="claude-test", prices=tmp_path / "prices.toml")
    assert isinstance(loaded, AnthropicAgent)
    assert loaded.prices.lookup("claude-test") == (Price(1.0, 2.0, 1.25, 0.1), True)
