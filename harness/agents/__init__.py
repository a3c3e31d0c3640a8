"""Agent backends behind one protocol (see base.py), and `make_agent` to build one from options.

`AGENT_KINDS` is the one list of what `--agent` accepts (settings, CLI, `--help` and docs use it):
`anthropic` (Messages API tool-use loop), `command` (any agent CLI, `--agent-cmd`), `replay` (a
scripted, deterministic agent) and the CLI presets `claude`, `codex`, `aider` (presets.py).
Backends are imported when built, so reading the settings does not load an SDK.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.agents.base import Agent, AgentEvent, Budget, Result, Task, Usage
from harness.agents.presets import PRESETS

if TYPE_CHECKING:
    from harness.agents.anthropic import RetryPolicy

BACKENDS = ("anthropic", "command", "replay")
AGENT_KINDS: tuple[str, ...] = (*BACKENDS, *PRESETS)

__all__ = [
    "AGENT_KINDS",
    "Agent",
    "AgentConfigError",
    "AgentEvent",
    "Budget",
    "Result",
    "Task",
    "Usage",
    "describe_kinds",
    "make_agent",
]


class AgentConfigError(ValueError):
    """Options that cannot make an agent (a usage error, exit code 2); the message says what to fix."""


def describe_kinds() -> str:
    """One line for `--help`: every kind, presets named with the CLI versions they were verified with."""
    presets = ", ".join(f"{p.name} ({p.version})" for p in PRESETS.values())
    return f"{' | '.join(BACKENDS)}, or a CLI preset: {presets}"


def make_agent(
    kind: str,
    *,
    model: str | None = None,
    agent_cmd: str | None = None,
    agent_env: tuple[str, ...] = (),
    agent_api: tuple[str, ...] = (),
    script: Path | None = None,
    prices: Path | None = None,
    max_tokens: int = 8192,
    retry: RetryPolicy | None = None,
    command_timeout_s: float = 600.0,
) -> Agent:
    """The backend for `--agent KIND`.

    - anthropic: `model` (default: the newest Sonnet the installed SDK lists), `prices` (a TOML/JSON
      price table overriding prices.toml), `max_tokens` per reply, `retry`, `command_timeout_s`.
    - command: `agent_cmd` is a preset name (claude, codex, aider) or a command template;
      `model` fills `{model}` / `{model_args}`; `agent_env` names extra variables the CLI may see;
      `agent_api` adds base URLs of model APIs it may reach under bwrap (a preset's own are always allowed).
      `kind` may also be a preset name itself (then `agent_cmd`, if given, must not contradict it).
    - replay: `script` (or `agent_cmd`) is the YAML/JSON script path.
    """
    try:
        if kind == "anthropic":
            from harness.agents.anthropic import AnthropicAgent, default_model
            from harness.agents.pricing import PriceTable

            table = PriceTable.load(prices) if prices else PriceTable.default()
            return AnthropicAgent(
                model or default_model(),
                max_tokens=max_tokens,
                prices=table,
                retry=retry,
                command_timeout_s=command_timeout_s,
            )
        if kind in PRESETS or kind == "command":
            from harness.agents.command import CommandAgent
            from harness.agents.pricing import PriceTable

            table = PriceTable.load(prices) if prices else None
            cmd = agent_cmd if kind == "command" else (agent_cmd or kind)
            if not cmd:
                raise AgentConfigError(
                    f"--agent command needs --agent-cmd: a preset ({', '.join(PRESETS)}) or a command template"
                )
            if cmd in PRESETS:
                if kind in PRESETS and cmd != kind:
                    raise AgentConfigError(f"--agent {kind} with --agent-cmd {cmd}: choose one CLI")
                agent = CommandAgent.preset(cmd, model=model or "", pass_env=tuple(agent_env), api=tuple(agent_api))
            else:
                name = kind if kind in PRESETS else None
                agent = CommandAgent(cmd, model=model or "", pass_env=tuple(agent_env), api=tuple(agent_api),
                                     name=name)
            agent.prices = table
            return agent
        if kind == "replay":
            from harness.agents.replay import ReplayAgent

            path = script or (Path(agent_cmd) if agent_cmd else None)
            if path is None:
                raise AgentConfigError("--agent replay needs the script path (--agent-cmd PATH)")
            return ReplayAgent(path, command_timeout_s=command_timeout_s)
    except AgentConfigError:
        raise
    except ValueError as exc:  # PriceError, ReplayScriptError, a bad template: all name what to fix
        raise AgentConfigError(str(exc)) from None
    raise AgentConfigError(f"unknown agent {kind!r}; choose one of {', '.join(AGENT_KINDS)}")
