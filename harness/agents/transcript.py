"""The attempt's record as it happens: one JSON line per step, plus live-view events.

Each record is appended and the file closed at once, so a crash or SIGKILL loses at most the
step in flight and never leaves a half-written earlier line. The file stays bounded whatever the
agent produces: a string longer than `FIELD_MAX` keeps its head and says how much was cut, and
once the file reaches `TRANSCRIPT_MAX` later records keep only their type, time and size.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.agents.base import AgentEvent, Task, Usage

FIELD_MAX = 64_000  # characters of one string inside a record
TRANSCRIPT_MAX = 64 << 20  # bytes of transcript; later records are reduced to a note


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cost_usd": round(usage.cost_usd, 6),
    }


def _clipped(value: Any) -> Any:
    """`value` with every string longer than `FIELD_MAX` cut to its head plus a note."""
    if isinstance(value, str) and len(value) > FIELD_MAX:
        return value[:FIELD_MAX] + f" … {len(value) - FIELD_MAX} characters cut"
    if isinstance(value, dict):
        return {k: _clipped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clipped(v) for v in value]
    return value


def one_line(text: str, width: int = 160) -> str:
    """`text` flattened to a single line of at most `width` characters, for the live view."""
    flat = " ".join(text[: 4 * width].split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class Transcript:
    """Appends records to `task.transcript_path` and forwards progress to `task.on_event`."""

    def __init__(self, task: Task) -> None:
        self.path = Path(task.transcript_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._on_event = task.on_event
        self._size = self.path.stat().st_size if self.path.exists() else 0

    def write(self, kind: str, **fields: Any) -> None:
        when = datetime.now(UTC).isoformat(timespec="milliseconds")
        line = json.dumps({"type": kind, "time": when, **_clipped(fields)}, default=str) + "\n"
        if self._size + len(line) > TRANSCRIPT_MAX:
            line = json.dumps({"type": kind, "time": when,
                               "cut": f"… {len(line)} bytes cut (transcript reached {TRANSCRIPT_MAX} bytes)"}) + "\n"
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)
        self._size += len(line)

    def event(self, turn: int, action: str, usage: Usage) -> None:
        if self._on_event is not None:
            self._on_event(AgentEvent(turn, one_line(action), usage))
