"""Before a `ralph run`'s first attempt: the sandbox this machine can give, the agent the settings name,
and its preflight. The CLI prints what these return; the loop (loop.py) takes it from there."""

from __future__ import annotations

from pathlib import Path

from harness.agents import Agent, AgentConfigError, make_agent
from harness.errors import RalphError
from harness.run.preflight import preflight
from harness.sandbox.environment import resolve_sandbox
from harness.settings import RunSettings


def with_sandbox(settings: RunSettings) -> tuple[RunSettings, str | None]:
    """`settings` with the sandbox this machine can give (bwrap falls back to none), and a note when it fell back."""
    chosen, note = resolve_sandbox(settings.sandbox)
    return settings.model_copy(update={"sandbox": chosen}), note


def build_agent(settings: RunSettings) -> Agent:
    """The agent backend the settings name; a bad choice is a usage error with its reason."""
    try:
        return make_agent(settings.agent, model=settings.model, agent_cmd=settings.agent_cmd,
                          agent_env=tuple(settings.agent_env))
    except AgentConfigError as e:
        raise RalphError(str(e)) from None


def ready_agent(settings: RunSettings, repo: Path) -> tuple[Agent, str]:
    """The agent, checked by preflight (PreflightError when it cannot run here), and preflight's one-line account."""
    agent = build_agent(settings)
    return agent, preflight(agent, repo, settings.sandbox)
