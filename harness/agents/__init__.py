"""Agent backends behind one protocol (see base.py), and `make_agent` to build one from options.

Backends: `anthropic` (Messages API tool-use loop), `command` (an agent CLI; presets `claude`,
`codex`, `aider`), `replay` (a scripted, deterministic agent).
"""

from __future__ import annotations

from pathlib import Path

from harness.agents.anthropic import DEFAULT_MODEL, AnthropicAgent, RetryPolicy
from harness.agents.base import Agent, AgentEvent, Budget, Result, Task, Usage
from harness.agents.command import PRESETS, CommandAgent
from harness.agents.pricing import PriceTable
from harness.agents.replay import ReplayAgent

AGENT_KINDS = ("anthropic", "command", "replay", *PRESETS)

__all__ = [
    "AGENT_KINDS",
    "Agent",
    "AgentConfigError",
    "AgentEvent",
    "Budget",
    "Result",
    "Task",
    "Usage",
    "make_agent",
]


class AgentConfigError(ValueError):
    """Options that cannot make an agent (a usage error, exit code 2); the message says what to fix."""


def make_agent(
    kind: str,
    *,
    model: str | None = None,
    agent_cmd: str | None = None,
    script: Path | None = None,
    prices: Path | None = None,
    max_tokens: int = 8192,
    retry: RetryPolicy | None = None,
    command_timeout_s: float = 600.0,
) -> Agent:
    """The backend for `--agent KIND`.

    - anthropic: `model` (default DEFAULT_MODEL), `prices` (a TOML/JSON price table overriding
      the defaults), `max_tokens` per reply, `retry`, `command_timeout_s` per tool command.
    - command: `agent_cmd` is a preset name (claude, codex, aider) or a command template;
      `model` fills `{model}` / `{model_args}`. `kind` may also be a preset name itself.
    - replay: `script` (or `agent_cmd`) is the YAML/JSON script path.
    """
    try:
        if kind == "anthropic":
            table = PriceTable.load(prices) if prices else PriceTable.default()
            return AnthropicAgent(
                model or DEFAULT_MODEL,
                max_tokens=max_tokens,
                prices=table,
                retry=retry,
                command_timeout_s=command_timeout_s,
            )
        if kind in PRESETS or kind == "command":
            cmd = kind if kind in PRESETS else agent_cmd
            if not cmd:
                presets = ", ".join(PRESETS)
                raise AgentConfigError(f"--agent command needs --agent-cmd: a preset ({presets}) or a command template")
            if cmd in PRESETS:
                return CommandAgent.preset(cmd, model=model or "")
            return CommandAgent(cmd, model=model or "")
        if kind == "replay":
            path = script or (Path(agent_cmd) if agent_cmd else None)
            if path is None:
                raise AgentConfigError("--agent replay needs the script path (--agent-cmd PATH)")
            return ReplayAgent(path, command_timeout_s=command_timeout_s)
    except AgentConfigError:
        raise
    except ValueError as exc:  # PriceError, ReplayScriptError, a bad template: all name what to fix
        raise AgentConfigError(str(exc)) from None
    raise AgentConfigError(f"unknown agent {kind!r}; choose one of {', '.join(AGENT_KINDS)}")
