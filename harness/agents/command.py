"""External agent CLIs (claude -p, codex exec, aider, ...) run as one subprocess per attempt.

The command template is a shell command with optional placeholders: `{prompt_file}` (the prompt
written to a file; otherwise it goes to stdin), `{model}`, `{model_args}` (`--model NAME` when a
model is set), `{max_turns}` and `{workdir}`. The whole process group is killed at the attempt's
time limit. The CLI's output is the transcript; usage, cost and turns come from the CLI's own
report (presets.py knows each one's; any other CLI's last JSON object is read like Claude's),
otherwise they stay zero (nothing is estimated).

A CLI agent needs its own API key: the key names of the CLI the template runs (recognised by its
executable's name, however the template spells the path) pass through the secret scrub, plus the
names in `pass_env` (`agent_env` in the config, for CLIs ralph does not know). The CLI hands its
environment to the tool commands it runs, so those commands can see that key; checks never do.
Under `--sandbox bwrap` the CLI runs in a network namespace of its own whose only way out is its
model API (`egress`: the preset's base URL, plus the `api` URLs declared with `--agent-api`; a CLI
ralph does not know gets no network unless some are declared); under seatbelt it keeps the network.
In either sandbox its install tree is mounted read-only; its HOME is a private, per-run directory
holding copies of its login files only (the user's home is empty), and ralph's own CODEX_HOME is the
one state directory bound writable (a user's own CODEX_HOME is copied: `state_dirs`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import string
import subprocess
import tempfile
from pathlib import Path

from harness.agents import reports
from harness.agents.base import Budget, Result, ResultStatus, Task, Usage
from harness.agents.presets import PRESETS, Preset, PromptVia, cli_for, command_word, install_mounts
from harness.agents.pricing import PriceTable
from harness.agents.transcript import Transcript, one_line
from harness.books.layout import PREFLIGHT, ralph_dir
from harness.sandbox.environment import Environment
from harness.sandbox.guards import readonly_paths
from harness.sandbox.network import Egress
from harness.sandbox.proc import ProcessResult, scrubbed_env

PLACEHOLDERS = ("prompt_file", "model", "model_args", "max_turns", "workdir")
TAIL_BYTES = 4000


class CommandAgent:
    """Runs `template` once per attempt in the task's working directory.

    `cli` is the preset whose CLI the template runs (found from the template's executable when not
    given): its credentials, state directories, report reader and environment set-up apply.
    `pass_env` adds environment variable names the CLI may see (for CLIs ralph does not know); `api` adds
    base URLs of model APIs it may reach under bwrap (besides its preset's).
    """

    def __init__(
        self,
        template: str,
        *,
        prompt_via: PromptVia | None = None,
        model: str = "",
        name: str | None = None,
        cli: Preset | None = None,
        pass_env: tuple[str, ...] = (),
        api: tuple[str, ...] = (),
        prices: PriceTable | None = None,
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
        self.cli = cli or cli_for(template)
        self.prompt_via: PromptVia = prompt_via or ("file" if "prompt_file" in fields else "stdin")
        takes_model = bool(fields & {"model", "model_args"})  # a default only means something if it is passed
        self.model = model or (self.cli.default_model if self.cli and takes_model else "")
        self.name = name or "command"
        self.pass_env = tuple(dict.fromkeys([*(self.cli.keys() if self.cli else ()), *pass_env]))
        self.install_hint = self.cli.install if self.cli else ""
        self.prices = prices
        self.api = tuple(api)
        Egress.to(self.api)  # a malformed URL is a usage error now, not at the first attempt

    @classmethod
    def preset(cls, preset: str, *, model: str = "", pass_env: tuple[str, ...] = (),
               api: tuple[str, ...] = ()) -> CommandAgent:
        p = PRESETS[preset]
        return cls(p.template, prompt_via=p.prompt_via, model=model, name=preset, cli=p, pass_env=pass_env, api=api)

    def egress(self) -> Egress:
        """Where the CLI's network reaches under bwrap: its preset's model APIs (read from the environment now)
        and the declared `api`; nothing for a CLI ralph does not know with none declared. ValueError for a
        base URL that names no host."""
        return Egress.to([*(self.cli.api_urls() if self.cli else ()), *self.api])

    def command(self, prompt_file: Path, workdir: Path, max_turns: int) -> str:
        """The shell command for one attempt."""
        return self.template.format(
            prompt_file=shlex.quote(str(prompt_file)),
            model=shlex.quote(self.model),
            model_args=f"--model {shlex.quote(self.model)}" if self.model else "",
            max_turns=max_turns,
            workdir=shlex.quote(str(workdir)),
        )

    def run(self, task: Task, budget: Budget) -> Result:
        log = Transcript(task)  # creates the directory; the CLI's own output is the transcript
        prompt = f"{task.system}\n\n{task.prompt}" if task.system else task.prompt
        prompt_file = log.path.with_suffix(".prompt.md")  # the record; the CLI reads a copy (below)
        prompt_file.write_text(prompt)
        executable, missing = self.executable(self.command(prompt_file, task.workdir, budget.max_turns))
        if missing:
            return Result("error", error=missing, transcript_path=log.path)
        last = [""]

        def on_line(line: str) -> None:
            if line.strip():
                last[0] = one_line(line)
                log.event(0, last[0], Usage())

        try:
            egress = self.egress()
        except ValueError as exc:
            return Result("error", error=f"{exc} (the agent's model API setting)", transcript_path=log.path)
        environment = Environment(task.sandbox)
        if environment.note:
            _note(log.path, environment.note)
        if environment.kind == "bwrap":  # the one sandbox with a network namespace of its own
            _note(log.path, f"network: the agent reaches only {egress.describe()}, through ralph's proxy"
                  if egress.allowed else "network: none (no model API declared for this CLI; --agent-api adds one)")
        with tempfile.TemporaryDirectory(prefix="ralph-scratch-") as scratch:
            # The CLI reads its prompt from its scratch directory: the run directory is under .ralph/, which
            # the sandbox hides.
            given = Path(scratch) / "prompt.md"
            given.write_text(prompt)
            command = self.command(given, task.workdir, budget.max_turns)
            extra = self.cli.prepare(Path(scratch)) if self.cli and self.cli.prepare else {}
            readonly, writable = self._mounts(task, Path(scratch), executable, extra) if environment.sandboxed \
                else ([], [])
            try:
                done = environment.run(
                    command,
                    task.workdir,
                    timeout_s=budget.timeout_s,
                    env=scrubbed_env([*task.env_allow, *self.pass_env], extra=extra),
                    network=egress,
                    readonly=readonly,
                    writable=writable,
                    scratch=Path(scratch),
                    stdin=prompt if self.prompt_via == "stdin" else None,
                    tail_bytes=TAIL_BYTES,
                    log_path=log.path,
                    on_line=on_line,
                    private_home=True,
                    hidden=[Path(task.workdir) / h for h in task.hidden],
                )
            except KeyboardInterrupt:
                return Result("interrupted", transcript_path=log.path, last_action=last[0])
        report = self._report(log.path)
        result = Result("completed", report.summary or done.output_tail[-1500:], report.usage, report.turns,
                        log.path, None, last[0])
        if done.timed_out:
            result.status, result.error = (
                "timeout",
                f"agent command ran past {budget.timeout_s:.0f}s; its process group was killed",
            )
        elif report.outcome == "turn_limit":  # claude exits 1 at --max-turns: still a turn limit
            result.status, result.error = "turn_limit", f"the CLI stopped at its turn limit ({budget.max_turns})"
        elif done.returncode != 0 or report.outcome == "error":
            outage = reports.outage_line(done.output_tail, report.error)
            exited = f"agent command exited with {done.returncode}: " if done.returncode else ""
            # the CLI's own words, one line, when it said what went wrong (never its whole JSON report)
            said = outage or report.error or ("\n" + done.output_tail if not reports.last_json(done.output_tail)
                                              else "its report names no error")
            result.status, result.error, result.outage = "error", f"{exited}{said}".strip(), bool(outage)
        else:
            result.status, result.error = _over_budget(result.usage, budget)
        return result

    def version(self, workdir: Path, sandbox_kind: str, timeout_s: float = 60.0) -> ProcessResult:
        """`<executable> --version`, run the way an attempt runs the CLI (same env, same sandbox mounts)."""
        executable, missing = self.executable()
        if missing or executable is None:
            return ProcessResult(None, missing or "the agent command starts with a shell builtin", 0.0)
        return self._as_an_attempt(f"{shlex.quote(str(executable))} --version", workdir, sandbox_kind, timeout_s)

    def named_paths(self, workdir: Path) -> list[Path]:
        """The files and folders the command template names that exist here (a script it runs, a config it
        reads), absolute; placeholders and option words are left out."""
        try:
            words = shlex.split(self.template)
        except ValueError:
            return []
        found = []
        for word in words[1:]:
            value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
            if "/" not in value or "{" in value:
                continue
            path = Path(value) if value.startswith("/") else Path(workdir) / value
            if path.exists():
                found.append(path.absolute())
        return list(dict.fromkeys(found))

    def hidden_paths(self, workdir: Path, sandbox_kind: str, timeout_s: float = 60.0) -> list[Path]:
        """Of `named_paths`, those the CLI would not see inside the sandbox (a script under the private /tmp or
        the empty home): each is tested there with the mounts an attempt gets."""
        executable, missing = self.executable()
        paths = self.named_paths(workdir)
        if not paths or not Environment(sandbox_kind).sandboxed or missing:
            return []
        probe = "for p in " + " ".join(shlex.quote(str(p)) for p in paths) + '; do test -e "$p" || echo "$p"; done'
        done = self._as_an_attempt(probe, workdir, sandbox_kind, timeout_s, executable=executable)
        hidden = set(done.output_tail.splitlines()) if done.ok else {str(p) for p in paths}
        return [p for p in paths if str(p) in hidden]

    def _as_an_attempt(self, command: str, workdir: Path, sandbox_kind: str, timeout_s: float,
                       executable: Path | None = None) -> ProcessResult:
        """`command`, run the way an attempt runs the CLI: the same environment and the same sandbox mounts."""
        executable = executable or self.executable()[0]
        task = Task("preflight", 0, "", "", Path(workdir), ralph_dir(workdir) / PREFLIGHT,
                    sandbox=sandbox_kind)  # type: ignore[arg-type]
        environment = Environment(sandbox_kind)
        with tempfile.TemporaryDirectory(prefix="ralph-scratch-") as scratch:
            extra = self.cli.prepare(Path(scratch)) if self.cli and self.cli.prepare else {}
            readonly, writable = self._mounts(task, Path(scratch), executable, extra) if environment.sandboxed \
                else ([], [])
            return environment.run(command, workdir, timeout_s=timeout_s,
                                   env=scrubbed_env(self.pass_env, extra=extra), network=False, readonly=readonly,
                                   writable=writable, scratch=Path(scratch), tail_bytes=TAIL_BYTES,
                                   private_home=True)

    def _report(self, transcript: Path) -> reports.CliReport:
        """The CLI's own account of the attempt; a cost it does not report is priced from the table."""
        try:
            text = transcript.read_bytes()[-2_000_000:].decode("utf-8", "replace")
        except OSError:
            text = ""
        report = (self.cli.parse_report if self.cli else reports.claude)(text)
        if not report.priced:
            table = self.prices or PriceTable.default()
            report.usage.cost_usd = table.cost(self.model, report.usage)
            warning = table.unpriced_warning(self.model)
            if warning:
                _note(transcript, warning)
        return report

    def executable(self, command: str | None = None) -> tuple[Path | None, str | None]:
        """The agent's executable (None for a shell builtin), or why it cannot run."""
        command = command or self.template
        try:
            shlex.split(command)
        except ValueError as exc:
            return None, f"agent command {command!r} cannot be parsed: {exc}"
        word = command_word(command)
        if not word:
            return None, "agent command is empty; pass --agent-cmd with a command or a preset (claude, codex, aider)"
        found = shutil.which(word)
        if found is None and not _shell_knows(word):
            hint = f"install it ({self.install_hint})" if self.install_hint else "install it or fix the path"
            return None, f"agent executable {word!r} was not found on PATH; {hint}, or choose another --agent-cmd"
        return (Path(found).absolute() if found else None), None

    def _mounts(
        self, task: Task, scratch: Path, executable: Path | None, extra_env: dict[str, str]
    ) -> tuple[list[Path], list[Path]]:
        """(read-only, writable) mounts in a sandbox: the judge's files and the CLI's install tree; its state is a
        private copy in the scratch home (`private_state`), so only CODEX_HOME, which ralph chooses, is bound."""
        root = Path(task.workdir).resolve()
        writable = self.state_dirs(extra_env, scratch)
        self.private_state(scratch / "home")
        readonly = [*readonly_paths(root, task.protected), *task.inputs]
        if executable is not None:  # its install tree stays visible even under the private /tmp
            keep = [root, scratch.resolve(), *writable]  # visible and writable already: neither covered nor re-bound
            readonly += [p for p in install_mounts(executable) if not any(_contains(p, k) or _contains(k, p)
                                                                          for k in keep)]
        return readonly, writable

    def state_dirs(self, extra_env: dict[str, str], scratch: Path) -> list[Path]:
        """Directories bound writable for the CLI: the CODEX_HOME its preset prepared (created when missing).

        A CODEX_HOME the user set is theirs and is never bound: the CLI gets a private copy in `scratch` holding
        its configuration and login only (`config.toml`, `auth.json`), discarded with the run, and `extra_env`
        names the copy. (Their sessions, history and anything the agent would leave there stay out.)"""
        user_home = os.environ.get("CODEX_HOME")
        if user_home and extra_env.get("CODEX_HOME") == user_home:
            copy = scratch / "codex-home"
            copy.mkdir(exist_ok=True)
            for name in ("config.toml", "auth.json"):
                if (Path(user_home) / name).is_file():
                    shutil.copy2(Path(user_home) / name, copy / name)
            extra_env["CODEX_HOME"] = str(copy)
        paths = [Path(extra_env["CODEX_HOME"])] if "CODEX_HOME" in extra_env else []
        for path in paths:
            path.mkdir(parents=True, exist_ok=True)
        return [p.resolve() for p in paths]

    def private_state(self, home: Path) -> None:
        """The CLI's state for one run in a sandbox: in `home` (the sandbox's HOME, discarded afterwards), a copy
        of its login files and nothing else of the user's. The user's own state directories (~/.claude,
        ~/.claude.json, ~/.aider) are never mounted: a hook, an MCP server or an apiKeyHelper the agent left
        there would run in the user's next session, outside any sandbox."""
        home.mkdir(parents=True, exist_ok=True)
        user_home = Path.home().resolve()
        for pattern in self.cli.login_files if self.cli else ():
            source = Path(os.path.expandvars(pattern)).expanduser()
            if source.is_file() and source.resolve().is_relative_to(user_home):
                copy = home / source.resolve().relative_to(user_home)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy)


def _contains(outer: Path, inner: Path) -> bool:
    """True when `inner` is `outer` or lies inside it (a read-only mount of `outer` would cover it)."""
    return inner.resolve().is_relative_to(outer.resolve())


def _note(transcript: Path, text: str) -> None:
    with transcript.open("a") as out:
        out.write(f"ralph: {text}\n")


def _shell_knows(word: str) -> bool:
    """True for bash builtins and keywords (`cd`, `exec`, ...), which `shutil.which` cannot see."""
    return subprocess.run(["bash", "-c", 'type -t -- "$1" >/dev/null', "_", word], capture_output=True).returncode == 0


def _over_budget(usage: Usage, budget: Budget) -> tuple[ResultStatus, str | None]:
    """A CLI can only be checked after it exits: flag an attempt that went over its caps."""
    if budget.max_cost_usd is not None and usage.cost_usd > budget.max_cost_usd:
        return "budget", f"the CLI reported ${usage.cost_usd:.4f}, over the attempt's cap ${budget.max_cost_usd:.4f}"
    if budget.max_tokens is not None and usage.total_tokens > budget.max_tokens:
        return "budget", f"the CLI reported {usage.total_tokens} tokens, over the attempt's cap {budget.max_tokens}"
    return "completed", None
