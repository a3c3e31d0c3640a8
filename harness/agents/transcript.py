"""The attempt's record as it happens: one JSON line per step, plus live-view events.

Each record is appended and the file closed at once, so a crash or SIGKILL loses at most the
step in flight and never leaves a half-written earlier line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.agents.base import AgentEvent, Task, Usage


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cost_usd": round(usage.cost_usd, 6),
    }


def one_line(text: str, width: int = 160) -> str:
    """`text` flattened to a single line of at most `width` characters, for the live view."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class Transcript:
    """Appends records to `task.transcript_path` and forwards progress to `task.on_event`."""

    def __init__(self, task: Task) -> None:
        self.path = Path(task.transcript_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._on_event = task.on_event

    def write(self, kind: str, **fields: Any) -> None:
        record = {"type": kind, "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")

    def event(self, turn: int, action: str, usage: Usage) -> None:
        if self._on_event is not None:
            self._on_event(AgentEvent(turn, one_line(action), usage))
