"""ralph's configuration: `ralph run`'s defaults and the cluster (`executors`).

Sources, later wins: built-ins < `[tool.ralph]` in pyproject.toml < `.ralph/config.toml` < CLI flags.

`[tool.ralph]` is read from pyproject.toml as committed at HEAD, never from the working tree: an
agent's edit there (which the guards also treat as tampering) can never change how the next run
is budgeted or sandboxed. `.ralph/config.toml` is the user's, and guarded the same way.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.agents import AGENT_KINDS
from harness.books.git.repo import committed_text
from harness.books.layout import CONFIG_FILE
from harness.errors import RalphError
from harness.fileio import is_virtualenv
from harness.sandbox import SandboxKind

AgentKind = Literal[AGENT_KINDS]  # type: ignore[valid-type]  # the one list, from harness.agents


class SettingsError(RalphError):
    """A config file has a wrong key or value; the message names the file and the key."""


class RaySettings(BaseModel):
    """`[tool.ralph.executors.ray]`."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    address: str | None = Field(None, description="The cluster's dashboard / Job API address, e.g. "
                                "http://ray-head:8265; RAY_ADDRESS wins when set")
    runtime_env: dict[str, Any] = Field(default_factory=dict, description="Merged into every job's runtime_env "
                                        "(pip, conda, env_vars, excludes, ...); working_dir is always ralph's")
    max_return_mb: float = Field(16, gt=0, description="Most a job may send back (metric files, artifacts)")
    poll_s: float = Field(2.0, gt=0, description="Seconds between status polls while waiting")


class ExecutorSettings(BaseModel):
    """`[tool.ralph.executors]`."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    ray: RaySettings = Field(default_factory=RaySettings)


class RunSettings(BaseModel):
    """Every budget has a finite default: a loop that nobody capped is a loop that runs all night."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    agent: AgentKind = "anthropic"
    model: str | None = None  # None: the backend's default (anthropic: the newest Sonnet its SDK lists)
    agent_cmd: str | None = None
    # Secret-looking variables a custom agent CLI may see (a known CLI's own keys pass anyway); checks never do
    agent_env: list[str] = Field(default_factory=list)
    # Base URLs of model APIs an agent CLI may reach under --sandbox bwrap, besides a known CLI's own (whose
    # base URL setting ralph reads); a CLI ralph does not know gets no network without them
    agent_api: list[str] = Field(default_factory=list)
    max_iterations: int = Field(10, ge=1)
    max_attempts: int | None = Field(None, ge=1)  # None: the PRD's defaults.max_attempts
    attempt_timeout_s: float | None = Field(None, gt=0)  # None: the PRD's defaults.attempt_timeout_s
    max_turns: int = Field(50, ge=1)
    max_cost_usd: float = Field(10.0, gt=0)
    max_tokens: int = Field(5_000_000, gt=0)
    max_hours: float = Field(8.0, gt=0)
    reset_on_fail: bool = False
    # auto: bwrap on Linux, seatbelt on macOS, where it works; else none, with a warning on every run
    sandbox: SandboxKind = "auto"
    # The interpreter `run` checks use when no virtual environment is active and the repository has no .venv
    # (see check_python): a path, absolute or relative to the repository, e.g. "/opt/conda/envs/exp/bin/python"
    python: str | None = None
    executors: ExecutorSettings = Field(default_factory=ExecutorSettings)  # [tool.ralph.executors.ray]: the cluster


VENV_DIR = ".venv"  # the repository's own virtual environment, when it has one


@dataclass(frozen=True)
class CheckPython:
    """The Python a local `run` check finds first on PATH (`python`, `pytest`, `lab`...), and why that one."""

    executable: Path  # not resolved: a venv's bin/python is a symlink, and following it would leave the venv
    source: str  # for a person: "the activated virtual environment (VIRTUAL_ENV)", ...
    venv: Path | None = None  # the virtual environment it belongs to (checks see it as VIRTUAL_ENV)

    @property
    def bin_dir(self) -> Path:
        return self.executable.parent

    def describe(self) -> str:
        """One line for `ralph run --dry-run` and `ralph status`."""
        return f"{self.executable} ({self.source})"


def _venv_python(root: Path) -> Path | None:
    """`root/bin/python` when `root` is a virtual environment (it has pyvenv.cfg), else None."""
    exe = root / "bin" / "python"
    return exe if is_virtualenv(root) and os.access(exe, os.X_OK) else None


def check_python(repo: Path, configured: str | None, environ: Mapping[str, str] = os.environ) -> CheckPython:
    """The project's Python, which local checks use: the activated virtual environment (`VIRTUAL_ENV`),
    else the repository's `.venv` (a directory with pyvenv.cfg), else `[tool.ralph] python`, else the
    interpreter ralph itself runs on (fine when ralph is installed into the project's environment; not
    when it is installed with pipx or `uv tool install`, whose environment has none of the project's packages).

    A configured `python` that is not an executable file is an error that says so, rather than a check that
    silently runs on another interpreter.
    """
    active = environ.get("VIRTUAL_ENV")
    if active:
        exe = _venv_python(Path(active))
        if exe is not None:
            return CheckPython(exe, "the activated virtual environment (VIRTUAL_ENV)", Path(active))
    local = Path(repo).absolute() / VENV_DIR  # absolute (not resolved): the checks and probes run elsewhere
    exe = _venv_python(local)
    if exe is not None:
        return CheckPython(exe, f"the repository's {VENV_DIR}", local)
    if configured:
        path = Path(configured).expanduser()
        path = path if path.is_absolute() else Path(repo).absolute() / path
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SettingsError(f"[tool.ralph] python = {configured!r}: {path} is not an executable file; "
                                "point it at the project's interpreter (e.g. /path/to/env/bin/python), or "
                                "activate the project's virtual environment, or create .venv in the repository")
        return CheckPython(path, "[tool.ralph] python")
    return CheckPython(Path(sys.executable), "ralph's own interpreter: no VIRTUAL_ENV, no .venv in the repository, "
                       "no [tool.ralph] python")


def _read_toml(text: str, where: str, table: tuple[str, ...]) -> dict:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where}: not valid TOML: {exc}") from exc
    for key in table:
        data = data.get(key, {})
    return data


def load_settings(repo: Path, overrides: dict | None = None) -> RunSettings:
    """Merge the config sources for `repo`; `overrides` are CLI flags (None values are ignored)."""
    merged: dict = {}
    local = repo / CONFIG_FILE
    sources = [(committed_text(repo, "pyproject.toml"), "pyproject.toml at HEAD", ("tool", "ralph")),
               (local.read_text() if local.is_file() else None, str(local), ())]
    for text, where, table in sources:
        if text is not None:
            found = _read_toml(text, where, table)
            try:
                RunSettings(**{**merged, **found})
            except ValidationError as exc:
                raise SettingsError(f"{where}: {_describe(exc)}") from exc
            merged.update(found)
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return RunSettings(**merged)
    except ValidationError as exc:
        raise SettingsError(f"ralph run options: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}' (known: {', '.join(RunSettings.model_fields)})")
        else:
            problems.append(f"'{where}': {err['msg']}")
    return "; ".join(problems)
