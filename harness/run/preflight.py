"""Before the first attempt: is the agent runnable here? Answers exit 2 with the fix, charging nothing.

Checked, in order: the agent's executable exists; under a sandbox, the files its command names (a script
under /tmp) are visible there, as the attempt will run; for a CLI ralph knows (claude, codex, aider,
however the template names it), its credentials are present (an API key variable, or the CLI's
own login file) and it answers `--version` inside the sandbox when one is used, with the same
mounts an attempt gets, so a CLI the sandbox hides is caught here. Another command need not
answer `--version`; only its executable is checked. Under bwrap the account names where the
agent's network reaches, and a model API URL that names no host is refused here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.agents import Agent
from harness.agents.presets import command_word
from harness.errors import RalphError

if TYPE_CHECKING:
    from harness.agents.command import CommandAgent


class PreflightError(RalphError):
    """The agent cannot run here; the message names the fix (exit code 2, no attempt charged)."""


def preflight(agent: Agent, workdir: Path, sandbox_kind: str) -> str:
    """Raise PreflightError unless `agent` can start an attempt; returns a one-line account of what was checked."""
    from harness.agents.command import CommandAgent  # imported here: it loads the sandbox and guards

    if isinstance(agent, CommandAgent):
        return _command(agent, Path(workdir), sandbox_kind)
    if agent.name == "anthropic":
        if not _present(("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")):
            raise PreflightError(
                "the anthropic agent needs ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN): export it, "
                "or choose another --agent (claude, codex, aider, command, replay)"
            )
        return f"anthropic agent, model {agent.model}, key present"
    return f"{agent.name} agent"


def _command(agent: CommandAgent, workdir: Path, sandbox_kind: str) -> str:
    from harness.sandbox.environment import resolve_sandbox  # loaded with the agent (see preflight)

    _, missing = agent.executable()
    if missing:
        raise PreflightError(missing)
    try:
        egress = agent.egress()
    except ValueError as exc:
        raise PreflightError(f"{exc}: fix the CLI's base URL variable or --agent-api; nothing was run") from None
    hidden = agent.hidden_paths(workdir, sandbox_kind)
    if hidden:
        names = ", ".join(str(p) for p in hidden)
        raise PreflightError(
            f"the agent command names {names}, which the {sandbox_kind} sandbox does not show the agent (it has a "
            "private /tmp and an empty home; it shows the repository and installed software): move it into the "
            "repository or next to the agent's installation, or run with --sandbox none; nothing was run")
    if resolve_sandbox(sandbox_kind)[0] != "bwrap":  # no sandbox (or none available): no network namespace
        return _cli(agent, workdir, sandbox_kind)
    return f"{_cli(agent, workdir, sandbox_kind)}; its network reaches {egress.describe()}"


def _cli(agent: CommandAgent, workdir: Path, sandbox_kind: str) -> str:
    cli = agent.cli
    if cli is None:  # a CLI ralph does not know need not answer --version (`sh`, `python agent.py`)
        return f"{agent.name}: {command_word(agent.template)} found"
    if not _present(cli.keys()) and not _logged_in(cli.login_files):
        names = " or ".join(cli.keys())
        login = f", or log in with `{cli.login}`" if cli.login else ""
        raise PreflightError(f"{cli.name} needs its API key: export {names}{login}; nothing was run")
    done = agent.version(workdir, sandbox_kind)
    if not done.ok:
        where = f" inside the {sandbox_kind} sandbox" if sandbox_kind != "none" else ""
        outside = agent.version(workdir, "none") if sandbox_kind != "none" else None
        hint = (
            "it runs outside the sandbox, so the sandbox hides something it needs: run with --sandbox none, "
            "or see docs/agents.md (Under --sandbox bwrap) for what ralph mounts"
            if outside is not None and outside.ok
            else f"reinstall it ({agent.install_hint})" if agent.install_hint else "check the installation"
        )
        code = "timed out" if done.timed_out else f"exit code {done.returncode}"
        raise PreflightError(
            f"`{command_word(agent.template)} --version` failed{where} ({code}): {done.output_tail.strip()[-400:]}\n{hint}"
        )
    version = done.output_tail.strip().splitlines()[-1] if done.output_tail.strip() else "?"
    if cli.version not in version:
        return f"{agent.name}: {version} (ralph's flags were verified with {cli.version})"
    return f"{agent.name}: {version}"


def _present(names: tuple[str, ...]) -> bool:
    return any(os.environ.get(name) for name in names)


def _logged_in(files: tuple[str, ...]) -> bool:
    return any(Path(os.path.expandvars(f)).expanduser().is_file() for f in files)
