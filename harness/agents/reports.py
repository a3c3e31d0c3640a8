"""Usage, cost, turns and outcome read from each agent CLI's own output (nothing is estimated).

- Claude Code (`-p --output-format json`): one JSON object with `usage`, `total_cost_usd`,
  `num_turns`, `result`, `subtype` (`error_max_turns` at the turn limit) and `is_error`.
- Codex (`exec --json`): JSONL events; each `turn.completed` carries `usage` with `input_tokens`
  (cached ones included), `cached_input_tokens` and `output_tokens`; no cost (the caller prices it),
  no turn count (one per tool call, plus the final message).
- aider: text lines `Tokens: 3.4k sent, 1.2k cache hit, 52 received. Cost: $0.0091 message, ...`.
- Any other CLI: its last JSON object, read the way Claude's is, when it has one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.agents.base import Usage

Outcome = Literal["ok", "turn_limit", "error"]


@dataclass
class CliReport:
    """What a CLI said about its own run; `priced` is False when the cost is still to be computed."""

    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    summary: str = ""
    outcome: Outcome = "ok"
    error: str = ""
    priced: bool = True


# What an API, connection, auth or rate-limit failure says, in the words the CLIs and their HTTP stacks use
# (Claude Code: "API Error: Connection error.", "Invalid API key · Please run /login"; codex: "stream
# disconnected", "unexpected status 401 Unauthorized"; litellm: "APIConnectionError", "RateLimitError").
OUTAGE = re.compile(
    r"api ?error|api_error|apiconnectionerror|connection ?(error|refused|reset|closed)|econnrefused|econnreset|"
    r"enotfound|getaddrinfo|name resolution|network is unreachable|stream disconnected|reconnecting|"
    r"\b(401|403|429|500|502|503|504|529)\b|unauthori[sz]ed|authenticat|invalid (api|x-api|bearer)[ -]?key|"
    r"api key|please run /login|credit balance|rate.?limit|too many requests|quota|overloaded|"
    r"service unavailable|bad gateway|internal server error",
    re.IGNORECASE,
)
OUTAGE_LINE_CHARS = 300


def outage_line(*texts: str) -> str:
    """The CLI's own one-line message when it names an outage (API, connection, auth, rate limit), or "".

    Each text is looked at in turn (the report's error first, then the output): its last line that
    names one, with a JSON report read for its `result` / `message` rather than copied whole.
    """
    for text in texts:
        report = last_json(text)
        said = report.get("result") or report.get("message") or (report.get("error") or {}) if report else ""
        if isinstance(said, dict):
            said = said.get("message") or ""
        candidates = [str(said)] if said else []
        candidates += [line.strip() for line in reversed(text.splitlines()) if not line.strip().startswith("{")]
        for line in candidates:
            if line and OUTAGE.search(line):
                return line if len(line) <= OUTAGE_LINE_CHARS else line[:OUTAGE_LINE_CHARS - 1] + "…"
    return ""


def last_json(text: str) -> dict[str, Any]:
    """The last JSON object in `text` (the whole text, or one object per line), or {}."""
    for candidate in [text.strip(), *reversed([line.strip() for line in text.splitlines()])]:
        if candidate.startswith("{"):
            try:
                value = json.loads(candidate)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def _int(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key)
    return int(value) if isinstance(value, int | float) else 0


def claude(text: str) -> CliReport:
    """Claude Code's JSON report (also the generic reader for other CLIs)."""
    report = last_json(text)
    raw = report.get("usage") if isinstance(report.get("usage"), dict) else {}
    cost = report.get("total_cost_usd")
    usage = Usage(
        _int(raw, "input_tokens"),
        _int(raw, "output_tokens"),
        _int(raw, "cache_creation_input_tokens"),
        _int(raw, "cache_read_input_tokens"),
        float(cost) if isinstance(cost, int | float) else 0.0,
    )
    result = CliReport(usage, _int(report, "num_turns"), str(report.get("result") or ""))
    if report.get("subtype") == "error_max_turns":
        result.outcome = "turn_limit"
    elif report.get("is_error"):
        result.outcome, result.error = "error", f"the CLI reported an error: {result.summary or report.get('subtype')}"
    return result


TOOL_ITEMS = frozenset({"command_execution", "file_change", "mcp_tool_call", "web_search"})


def codex(text: str) -> CliReport:
    """Codex's `--json` events: usage summed over `turn.completed`, summary from the last agent message."""
    result = CliReport(priced=False)
    tool_calls, answered = 0, False
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            if "Refusing to create helper binaries" in line:
                result.outcome, result.error = "error", (
                    f"codex could not set up its helper binaries ({line}); its CODEX_HOME must not be "
                    "inside the TMPDIR it sees"
                )
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("type")
        if kind == "turn.completed" and isinstance(event.get("usage"), dict):
            raw = event["usage"]
            cached = _int(raw, "cached_input_tokens")
            written = _int(raw, "cache_write_input_tokens")
            result.usage += Usage(
                input_tokens=max(_int(raw, "input_tokens") - cached - written, 0),
                output_tokens=_int(raw, "output_tokens"),
                cache_creation_input_tokens=written,
                cache_read_input_tokens=cached,
            )
        elif kind == "item.completed" and isinstance(event.get("item"), dict):
            item = event["item"]
            if item.get("type") in TOOL_ITEMS:
                tool_calls += 1
            elif item.get("type") == "agent_message":
                answered = True
                result.summary = str(item.get("text") or "")
        elif kind in ("turn.failed", "error"):
            message = event.get("message") or (event.get("error") or {}).get("message") or line
            result.outcome, result.error = "error", f"codex reported an error: {message}"
    result.turns = tool_calls + int(answered)
    return result


_TOKENS = re.compile(
    r"^Tokens: (?P<counts>.*? received)\.(?: Cost: \$(?P<message>[\d.]+) message, \$(?P<session>[\d.]+) session)?"
)
_COUNT = re.compile(r"([\d.]+)([kKmM]?) (sent|received|cache write|cache hit)")
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


def aider(text: str) -> CliReport:
    """aider's per-reply "Tokens: ... Cost: ..." lines; one line is one model reply (a turn)."""
    result = CliReport()
    fields = {"sent": "input_tokens", "received": "output_tokens", "cache write": "cache_creation_input_tokens",
              "cache hit": "cache_read_input_tokens"}
    session_cost = None
    for line in text.splitlines():
        match = _TOKENS.match(line.strip())
        if not match:
            continue
        result.turns += 1
        counts = {name: 0 for name in fields.values()}
        for number, scale, label in _COUNT.findall(match["counts"]):
            counts[fields[label]] += round(float(number) * _SCALE[scale.lower()])
        # aider's "sent" already includes the cached part; keep the categories disjoint as Usage expects
        counts["input_tokens"] = max(
            counts["input_tokens"] - counts["cache_read_input_tokens"] - counts["cache_creation_input_tokens"], 0
        )
        result.usage += Usage(**counts)
        if match["session"]:
            session_cost = float(match["session"])
    if session_cost is not None:
        result.usage.cost_usd = session_cost
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Repo-map:")]  # the end of its banner
    reply = [line for line in lines[starts[-1] + 1 if starts else 0 :] if line.strip() and not _TOKENS.match(line)]
    result.summary = "\n".join(reply[-20:])
    return result
