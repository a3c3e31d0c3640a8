"""External agent CLIs (claude -p, codex exec, aider, ...) run as one subprocess per attempt.

The command template is a shell command with optional placeholders: `{prompt_file}` (the prompt
written to a file; otherwise it goes to stdin), `{model}`, `{model_args}` (`--model NAME` when a
model is set), `{max_turns}` and `{workdir}`. The whole process group is killed at the attempt's
time limit. The CLI's output is the transcript; when its last JSON object carries usage (as
`claude -p --output-format json` does: `total_cost_usd`, `usage`, `num_turns`, `result`), the
figures are read from it, otherwise usage stays zero (nothing is estimated).

A CLI agent needs its own API key, so the preset's key names pass through the secret scrub;
under `--sandbox bwrap` it keeps the network and may write its state directory (e.g. ~/.claude).
"""

from __future__ import annotations

import json
import shlex
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.agents.base import Budget, Result, ResultStatus, Task, Usage
from harness.agents.transcript import Transcript, one_line
from harness.environment import Environment
from harness.guards import readonly_paths
from harness.proc import scrubbed_env

PromptVia = Literal["stdin", "file"]
PLACEHOLDERS = ("prompt_file", "model", "model_args", "max_turns", "workdir")
TAIL_BYTES = 4000


@dataclass(frozen=True)
class Preset:
    template: str
    prompt_via: PromptVia
    pass_env: tuple[str, ...]  # credentials the CLI itself needs
    state_paths: tuple[str, ...]  # where it keeps sessions/config (writable inside bwrap)
    install: str


PRESETS: dict[str, Preset] = {
    "claude": Preset(
        "claude -p --output-format json --permission-mode bypassPermissions --max-turns {max_turns} {model_args}",
        "stdin",
        ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
        ("~/.claude", "~/.claude.json"),
        "npm install -g @anthropic-ai/claude-code",
    ),
    "codex": Preset(
        "codex exec --sandbox workspace-write {model_args} -",
        "stdin",
        ("OPENAI_API_KEY", "CODEX_API_KEY"),
        ("~/.codex",),
        "npm install -g @openai/codex",
    ),
    "aider": Preset(
        "aider --message-file {prompt_file} --yes {model_args}",
        "file",
        ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"),
        ("~/.aider",),
        "pip install aider-install && aider-install",
    ),
}


class CommandAgent:
    """Runs `template` once per attempt in the task's working directory."""

    def __init__(
        self,
        template: str,
        *,
        prompt_via: PromptVia | None = None,
        model: str = "",
        name: str = "command",
        pass_env: tuple[str, ...] = (),
        state_paths: tuple[str, ...] = (),
        install_hint: str = "",
    ) -> None:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        except ValueError as exc:
            raise ValueError(
                f"agent command template {template!r} is malformed ({exc}); write literal braces as {{{{ }}}}"
            ) from None
        unknown = fields - set(PLACEHOLDERS)
        if unknown:
            raise ValueError(
                f"agent command template {template!r} has unknown placeholder(s) {sorted(unknown)}; "
                f"allowed: {', '.join('{' + p + '}' for p in PLACEHOLDERS)} (write literal braces as {{{{ }}}})"
            )
        self.template = template
        self.prompt_via: PromptVia = prompt_via or ("file" if "prompt_file" in fields else "stdin")
        self.model = model
        self.name = name
        self.pass_env = pass_env
        self.state_paths = state_paths
        self.install_hint = install_hint

    @classmethod
    def preset(cls, preset: str, *, model: str = "") -> CommandAgent:
        p = PRESETS[preset]
        return cls(
            p.template,
            prompt_via=p.prompt_via,
            model=model,
            name=preset,
            pass_env=p.pass_env,
            state_paths=p.state_paths,
            install_hint=p.install,
        )

    def run(self, task: Task, budget: Budget) -> Result:
        log = Transcript(task)  # creates the directory; the CLI's own output is the transcript
        prompt = f"{task.system}\n\n{task.prompt}" if task.system else task.prompt
        prompt_file = log.path.with_suffix(".prompt.md")
        prompt_file.write_text(prompt)
        command = self.template.format(
            prompt_file=shlex.quote(str(prompt_file)),
            model=shlex.quote(self.model),
            model_args=f"--model {shlex.quote(self.model)}" if self.model else "",
            max_turns=budget.max_turns,
            workdir=shlex.quote(str(task.workdir)),
        )
        executable, missing = self._executable(command)
        if missing:
            return Result("error", error=missing, transcript_path=log.path)
        last = [""]

        def on_line(line: str) -> None:
            if line.strip():
                last[0] = one_line(line)
                log.event(0, last[0], Usage())

        environment = Environment(task.sandbox)
        if environment.note:
            with log.path.open("a") as out:
                out.write(f"ralph: {environment.note}\n")
        readonly, writable = self._mounts(task, executable) if environment.sandboxed else ([], [])
        try:
            done = environment.run(
                command,
                task.workdir,
                timeout_s=budget.timeout_s,
                env=scrubbed_env([*task.env_allow, *self.pass_env]),
                network=True,
                readonly=readonly,
                writable=writable,
                stdin=prompt if self.prompt_via == "stdin" else None,
                tail_bytes=TAIL_BYTES,
                log_path=log.path,
                on_line=on_line,
            )
        except KeyboardInterrupt:
            return Result("interrupted", transcript_path=log.path, last_action=last[0])
        report = _last_json(log.path)
        usage, turns, summary = _usage(report), int(report.get("num_turns") or 0), str(report.get("result") or "")
        result = Result("completed", summary or done.output_tail[-1500:], usage, turns, log.path, None, last[0])
        if done.timed_out:
            result.status, result.error = (
                "timeout",
                f"agent command ran past {budget.timeout_s:.0f}s; its process group was killed",
            )
        elif done.returncode != 0:
            result.status, result.error = "error", f"agent command exited with {done.returncode}:\n{done.output_tail}"
        elif report.get("subtype") == "error_max_turns":
            result.status, result.error = "turn_limit", f"the CLI stopped at its turn limit ({budget.max_turns})"
        elif report.get("is_error"):
            result.status, result.error = "error", f"the CLI reported an error: {summary or report.get('subtype')}"
        else:
            result.status, result.error = _over_budget(usage, budget)
        return result

    def _executable(self, command: str) -> tuple[Path | None, str | None]:
        """The agent's executable (None for a shell builtin), or why it cannot run."""
        try:
            words = [w for w in shlex.split(command) if "=" not in w.split("/")[0]]
        except ValueError as exc:
            return None, f"agent command {command!r} cannot be parsed: {exc}"
        if not words:
            return None, "agent command is empty; pass --agent-cmd with a command or a preset (claude, codex, aider)"
        found = shutil.which(words[0])
        if found is None and not _shell_knows(words[0]):
            hint = f"install it ({self.install_hint})" if self.install_hint else "install it or fix the path"
            return None, f"agent executable {words[0]!r} was not found on PATH; {hint}, or choose another --agent-cmd"
        return (Path(found).resolve() if found else None), None

    def _mounts(self, task: Task, executable: Path | None) -> tuple[list[Path], list[Path]]:
        """(read-only, writable) mounts under bwrap: the judge's files, and the CLI's state directories."""
        readonly = readonly_paths(Path(task.workdir).resolve(), task.protected)
        if executable is not None:
            readonly.append(executable)  # stays visible even when it lives under the private /tmp
        return readonly, [Path(p).expanduser() for p in self.state_paths]


def _shell_knows(word: str) -> bool:
    """True for bash builtins and keywords (`cd`, `exec`, ...), which `shutil.which` cannot see."""
    return subprocess.run(["bash", "-c", 'type -t -- "$1" >/dev/null', "_", word], capture_output=True).returncode == 0


def _last_json(path: Path) -> dict[str, Any]:
    """The last JSON object in the CLI's output (whole output, or one per line), or {}."""
    try:
        text = path.read_bytes()[-2_000_000:].decode("utf-8", "replace")
    except OSError:
        return {}
    candidates = [text.strip(), *reversed([line.strip() for line in text.splitlines()])]
    for candidate in candidates:
        if candidate.startswith("{"):
            try:
                value = json.loads(candidate)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def _usage(report: dict[str, Any]) -> Usage:
    raw = report.get("usage") if isinstance(report.get("usage"), dict) else {}

    def count(key: str) -> int:
        value = raw.get(key)
        return int(value) if isinstance(value, int | float) else 0

    cost = report.get("total_cost_usd")
    return Usage(
        count("input_tokens"),
        count("output_tokens"),
        count("cache_creation_input_tokens"),
        count("cache_read_input_tokens"),
        float(cost) if isinstance(cost, int | float) else 0.0,
    )


def _over_budget(usage: Usage, budget: Budget) -> tuple[ResultStatus, str | None]:
    """A CLI can only be checked after it exits: flag an attempt that went over its caps."""
    if budget.max_cost_usd is not None and usage.cost_usd > budget.max_cost_usd:
        return "budget", f"the CLI reported ${usage.cost_usd:.4f}, over the attempt's cap ${budget.max_cost_usd:.4f}"
    if budget.max_tokens is not None and usage.total_tokens > budget.max_tokens:
        return "budget", f"the CLI reported {usage.total_tokens} tokens, over the attempt's cap {budget.max_tokens}"
    return "completed", None
