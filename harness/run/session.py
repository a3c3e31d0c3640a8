"""Before a `ralph run`'s first attempt: the sandbox this machine can give, the agent the settings name,
and its preflight. The CLI prints what these return; the loop (loop.py) takes it from there."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.agents import Agent, AgentConfigError, make_agent
from harness.errors import RalphError
from harness.run.preflight import preflight
from harness.sandbox.environment import resolve_sandbox
from harness.settings import RunSettings


def with_sandbox(settings: RunSettings) -> tuple[RunSettings, str | None]:
    """`settings` with the sandbox this machine can give (`auto` becomes bwrap or seatbelt; one that cannot work
    here becomes none), and a warning when it fell back to none."""
    chosen, note = resolve_sandbox(settings.sandbox)
    return settings.model_copy(update={"sandbox": chosen}), note


def toolchain_warning(settings: RunSettings, repo: Path) -> str | None:
    """A warning when ralph's own Python lives inside the repository and nothing keeps the agent out of it."""
    prefix = Path(sys.prefix).resolve()
    if settings.sandbox == "none" and prefix.is_relative_to(Path(repo).resolve()):
        return (f"ralph runs from {prefix}, inside the repository: with --sandbox none the agent can change the "
                "code that judges it. Use a sandbox (--sandbox auto: bwrap on Linux, seatbelt on macOS; it keeps "
                "that environment read-only), or install ralph outside the repository (pipx, uv tool install).")
    return None


def describe_sandbox(requested: str, chosen: str) -> str:
    """The run header's sandbox line: what was asked for, what runs, and what that means for the agent."""
    asked = f" (--sandbox {requested})" if requested != chosen else ""
    if chosen == "none":
        return (f"none{asked}: no sandbox, the agent and the checks run with your rights"
                + ("" if asked else ", as --sandbox none asks"))
    meaning = "the agent writes only the repository and scratch space, sees an empty home and no .ralph/"
    untested = "; untested on a Mac (docs/judge.md)" if chosen == "seatbelt" else ""
    return f"{chosen}{asked}: {meaning}{untested}"


def build_agent(settings: RunSettings) -> Agent:
    """The agent backend the settings name; a bad choice is a usage error with its reason."""
    try:
        return make_agent(settings.agent, model=settings.model, agent_cmd=settings.agent_cmd,
                          agent_env=tuple(settings.agent_env), agent_api=tuple(settings.agent_api))
    except AgentConfigError as e:
        raise RalphError(str(e)) from None


def ready_agent(settings: RunSettings, repo: Path) -> tuple[Agent, str]:
    """The agent, checked by preflight (PreflightError when it cannot run here), and preflight's one-line account."""
    agent = build_agent(settings)
    return agent, preflight(agent, repo, settings.sandbox)
