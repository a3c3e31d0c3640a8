"""A tool-use loop on the Anthropic Messages API, with the harness executing the tools.

Anthropic's client tools `bash` (bash_20250124) and `str_replace_based_edit_tool`
(text_editor_20250728) run through tools.Workspace in the repository. The loop stops when the
model ends its turn, at the budget's turn cap (turn_limit), cost or token cap (budget), or time
limit (timeout). The stable system prompt and the newest message carry `cache_control`, so
attempts and turns reuse the prompt cache. One JSONL record per turn, written as it happens.

Retries: the SDK's own retries are off and this module retries 429, 5xx (529 overloaded
included) and connection errors itself, because the SDK's backoff constants are not
configurable and tests need fast, bounded retries; a `retry-after` header is honoured.
`ANTHROPIC_BASE_URL` points the client at any compatible endpoint (the SDK reads it).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.agents.base import Budget, Result, ResultStatus, Task, Usage
from harness.agents.pricing import PriceTable
from harness.agents.tools import BASH, EDITOR, Workspace
from harness.agents.transcript import Transcript, usage_dict

if TYPE_CHECKING:
    import anthropic  # imported where the API is called: loading the SDK takes seconds (`ralph run` pays only then)

FALLBACK_MODEL = "claude-sonnet-4-6"  # only when the installed SDK lists no Sonnet at all
_SONNET = re.compile(r"^claude-sonnet-(\d+)(?:-(\d))?$")  # dated snapshots (…-20250929) are not picked


def sdk_model_names() -> list[str]:
    """The model names in the installed anthropic SDK's `Model` literal (anthropic/types/model.py).

    Read from the source, not imported: importing `anthropic.types` runs the whole SDK's `__init__`
    (seconds), and the default model is needed before any API call (`ralph run --dry-run`, preflight)."""
    spec = importlib.util.find_spec("anthropic")  # a top-level package: found, not executed
    if spec is None or spec.origin is None:
        return []
    source = Path(spec.origin).parent / "types" / "model.py"
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "Model" for t in targets) and node.value is not None:
                return [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return []


@functools.cache
def default_model() -> str:
    """The newest Sonnet the installed anthropic SDK lists in its `Model` literal (e.g. claude-sonnet-5-5)."""
    listed = sdk_model_names()
    versions = {name: (int(m[1]), int(m[2] or 0)) for name in listed if (m := _SONNET.match(name))}
    return max(versions, key=versions.__getitem__) if versions else FALLBACK_MODEL


TOOLS: list[dict[str, Any]] = [
    {"type": "bash_20250124", "name": BASH},
    {"type": "text_editor_20250728", "name": EDITOR},
]
CACHE = {"type": "ephemeral"}
TOOL_NOTE = (
    "Your tools run in the repository root {root}. Each bash command starts in a fresh shell there "
    "(cd and variables do not carry over) and is killed after {timeout:.0f}s. PRD.json, progress.txt, "
    ".ralph/ and .git/ belong to the harness: edits to them are refused or reverted. The harness, not "
    "you, runs the checks that decide whether the feature passes."
)
CONTINUE = "Your reply was cut off at the output token limit; continue where you stopped."


@dataclass
class RetryPolicy:
    """How often and how long to wait after 429 / 5xx / connection errors."""

    max_retries: int = 6
    backoff_s: float = 2.0  # doubled after each failure
    max_backoff_s: float = 60.0  # cap for both the doubling and a server's retry-after


class _Stop(Exception):
    """Ends the loop early with a status (mini-swe-agent style control flow)."""

    def __init__(self, status: ResultStatus, error: str | None = None) -> None:
        super().__init__(error or status)
        self.status, self.error = status, error


@dataclass
class _Progress:
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    summary: str = ""
    last_action: str = ""


class AnthropicAgent:
    name = "anthropic"

    def __init__(
        self,
        model: str | None = None,
        *,
        max_tokens: int = 8192,
        prices: PriceTable | None = None,
        retry: RetryPolicy | None = None,
        command_timeout_s: float = 600.0,
        max_output_chars: int = 16_000,
        request_timeout_s: float = 600.0,
    ) -> None:
        self.model = model or default_model()
        self.max_tokens = max_tokens
        self.prices = prices or PriceTable.default()
        self.retry = retry or RetryPolicy()
        self.command_timeout_s = command_timeout_s
        self.max_output_chars = max_output_chars
        self.request_timeout_s = request_timeout_s

    def run(self, task: Task, budget: Budget) -> Result:
        if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
            return Result(
                "error",
                error="ANTHROPIC_API_KEY is not set: export it (or ANTHROPIC_AUTH_TOKEN), "
                "or run with --agent command / --agent replay",
            )
        log = Transcript(task)
        price, exact = self.prices.lookup(self.model)
        log.write(
            "start",
            agent=self.name,
            model=self.model,
            feature=task.feature_id,
            attempt=task.attempt,
            system=task.system,
            prompt=task.prompt,
            price_per_mtok={k: round(v, 6) for k, v in vars(price).items()},
            price_known=exact,
        )
        progress = _Progress()
        with Workspace.for_task(
            task, command_timeout_s=self.command_timeout_s, max_output_chars=self.max_output_chars
        ) as ws:
            if ws.note:
                log.write("note", text=ws.note)
            warning = self.prices.unpriced_warning(self.model)
            if warning:
                log.write("note", text=warning)
            status: ResultStatus = "completed"
            error = None
            try:
                self._loop(task, budget, ws, log, progress)
            except _Stop as stop:
                status, error = stop.status, stop.error
            except KeyboardInterrupt:
                status = "interrupted"
        log.write("end", status=status, error=error, turns=progress.turns, usage=usage_dict(progress.usage))
        return Result(status, progress.summary, progress.usage, progress.turns, log.path, error, progress.last_action)

    # --- the loop -------------------------------------------------------------------------
    def _loop(self, task: Task, budget: Budget, ws: Workspace, log: Transcript, progress: _Progress) -> None:
        deadline = time.monotonic() + budget.timeout_s
        note = TOOL_NOTE.format(root=ws.root, timeout=ws.command_timeout_s)
        system = [{"type": "text", "text": f"{task.system}\n\n{note}" if task.system else note, "cache_control": CACHE}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": task.prompt}]}]
        import anthropic

        client = anthropic.Anthropic(max_retries=0)
        while True:
            if progress.turns >= budget.max_turns:
                raise _Stop("turn_limit", f"stopped after {progress.turns} turns (the attempt's cap)")
            response = self._create(client, system, messages, deadline, log)
            progress.turns += 1
            turn_usage = self._usage(response.usage)
            progress.usage = progress.usage + turn_usage
            content = [_block_param(block) for block in response.content]
            messages.append({"role": "assistant", "content": content})
            text = "\n".join(b["text"] for b in content if b["type"] == "text").strip()
            if text:
                progress.summary = text
                progress.last_action = text
                log.event(progress.turns, text, progress.usage)
            results = [
                self._execute(block, ws, deadline, progress, log) for block in content if block["type"] == "tool_use"
            ]
            log.write(
                "turn",
                turn=progress.turns,
                stop_reason=response.stop_reason,
                content=content,
                tool_results=results,
                usage=usage_dict(turn_usage),
                total=usage_dict(progress.usage),
            )
            _check_budget(progress.usage, budget)
            if results:
                messages.append({"role": "user", "content": results})
            elif response.stop_reason == "max_tokens":
                messages.append({"role": "user", "content": [{"type": "text", "text": CONTINUE}]})
            elif response.stop_reason == "refusal":
                raise _Stop("error", "the model refused to continue (stop_reason 'refusal')")
            elif response.stop_reason != "pause_turn":
                return  # end_turn / stop_sequence: the agent says it is done; the harness will check

    def _create(
        self,
        client: anthropic.Anthropic,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        deadline: float,
        log: Transcript,
    ) -> Any:
        """One Messages call with bounded retries; raises _Stop when it cannot get an answer."""
        import anthropic

        delay, failures = self.retry.backoff_s, 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Stop("timeout", "the attempt's time limit passed while waiting for the API")
            try:
                return client.messages.create(
                    model=self.model,
                    max_tokens=self.max_tokens,
                    system=system,
                    tools=TOOLS,
                    messages=_mark_last(messages),
                    timeout=min(self.request_timeout_s, remaining),
                )
            except (anthropic.RateLimitError, anthropic.InternalServerError, anthropic.APIConnectionError) as exc:
                reason = _describe(exc)
                if failures == self.retry.max_retries:
                    raise _Stop("error", f"Anthropic API still failing after {failures} retries: {reason}") from None
                wait = min(_retry_after(exc) or delay, self.retry.max_backoff_s)
                if time.monotonic() + wait >= deadline:
                    raise _Stop("timeout", f"the attempt's time limit would pass before retrying ({reason})") from None
                failures += 1
                log.write("retry", failure=failures, wait_s=round(wait, 3), error=reason)
                time.sleep(wait)
                delay = min(delay * 2, self.retry.max_backoff_s)
            except anthropic.APIError as exc:
                raise _Stop("error", f"Anthropic API request failed: {_describe(exc)}") from None

    def _execute(
        self, block: dict[str, Any], ws: Workspace, deadline: float, progress: _Progress, log: Transcript
    ) -> dict[str, Any]:
        params = block["input"] if isinstance(block["input"], dict) else {}
        progress.last_action = _action(block["name"], params)
        log.event(progress.turns, progress.last_action, progress.usage)
        out = ws.run_tool(block["name"], params, timeout_s=max(deadline - time.monotonic(), 1.0))
        return {
            "type": "tool_result",
            "tool_use_id": block["id"],
            "content": out.text or "(no output)",
            "is_error": out.is_error,
        }

    def _usage(self, raw: Any) -> Usage:
        usage = Usage(
            raw.input_tokens or 0,
            raw.output_tokens or 0,
            getattr(raw, "cache_creation_input_tokens", 0) or 0,
            getattr(raw, "cache_read_input_tokens", 0) or 0,
        )
        usage.cost_usd = self.prices.cost(self.model, usage)
        return usage


def _check_budget(usage: Usage, budget: Budget) -> None:
    if budget.max_cost_usd is not None and usage.cost_usd >= budget.max_cost_usd:
        raise _Stop("budget", f"spent ${usage.cost_usd:.4f}, at or over the attempt's cap ${budget.max_cost_usd:.4f}")
    if budget.max_tokens is not None and usage.total_tokens >= budget.max_tokens:
        raise _Stop("budget", f"used {usage.total_tokens} tokens, at or over the attempt's cap {budget.max_tokens}")


def _mark_last(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` with a cache breakpoint on the newest block (the stored history stays unmarked)."""
    last = messages[-1]
    content = [*last["content"][:-1], {**last["content"][-1], "cache_control": CACHE}]
    return [*messages[:-1], {**last, "content": content}]


def _block_param(block: Any) -> dict[str, Any]:
    """A response content block as a request block (only the fields the API accepts back)."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    return block.model_dump(exclude_none=True)


def _action(name: str, params: dict[str, Any]) -> str:
    if name == BASH:
        return f"bash: {params.get('command', '(restart)')}"
    return f"{params.get('command', name)} {params.get('path', '')}".strip()


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the doubling backoff is close enough


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    return f"HTTP {status}: {getattr(exc, 'message', exc)}" if status else f"{type(exc).__name__}: {exc}"
