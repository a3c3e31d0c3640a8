"""The one protocol every agent backend implements, and the records it returns.

The loop builds a `Task`, hands it with a `Budget` to `Agent.run`, and gets a `Result`.
Backends never decide whether a feature passes: they only change the working tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from harness.sandbox import SandboxKind

ResultStatus = Literal["completed", "turn_limit", "timeout", "budget", "error", "interrupted"]


@dataclass
class Usage:
    """Tokens and money spent; backends that cannot tell leave zeros."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass
class Budget:
    """What one attempt may spend. None means no cap from this source (the loop always sets some)."""

    timeout_s: float
    max_turns: int = 50
    max_cost_usd: float | None = None
    max_tokens: int | None = None


@dataclass
class AgentEvent:
    """Progress for the live view: the agent's latest action and what the attempt has spent so far."""

    turn: int
    action: str
    usage: Usage


@dataclass
class Task:
    """One attempt at one feature.

    `system` is the stable part of the prompt (principles, feature, checks), cacheable across
    attempts; `prompt` is the per-attempt part (last failure, recent progress).
    """

    feature_id: str
    attempt: int
    system: str
    prompt: str
    workdir: Path
    transcript_path: Path
    protected: list[str] = field(default_factory=list)  # glob patterns relative to workdir
    inputs: list[Path] = field(default_factory=list)  # ignored directories the checks read: read-only in a sandbox
    env_allow: list[str] = field(default_factory=list)  # secret names the PRD allows through
    sandbox: SandboxKind = "none"
    hidden: list[str] = field(default_factory=list)  # paths relative to workdir the agent may not read (a holdout)
    on_event: Callable[[AgentEvent], None] | None = None  # called after every action; must not raise


@dataclass
class Result:
    """What an attempt did; `summary` is the agent's own account, advisory only."""

    status: ResultStatus
    summary: str = ""
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    transcript_path: Path | None = None
    error: str | None = None
    last_action: str = ""
    # The error is an outage (API unreachable, auth refused, rate limit, overload), in the CLI's own one line
    # (reports.outage_line): nothing the agent did; the loop does not charge it as an attempt
    outage: bool = False


class Agent(Protocol):
    """A coding agent backend. `run` must return (not raise) for agent-side failures."""

    name: str
    model: str

    def run(self, task: Task, budget: Budget) -> Result: ...
