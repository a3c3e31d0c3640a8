"""The agent's hands: a bash tool and a text-editor tool confined to one repository.

Shared by every backend that executes tools itself (anthropic, replay), so the same refusals
apply everywhere. Bad tool input never raises: the model gets an error string it can act on.

- bash: a fresh `bash -c` per command in the repository root (no state carries over), its own
  process group killed at the per-command timeout, secrets removed from the environment, output
  cut to its head and tail, nothing it started left running; harness/sandbox/environment.py runs it (under
  the sandbox for `sandbox="bwrap"` or `"seatbelt"`).
- str_replace_based_edit_tool: Anthropic's text_editor_20250728 commands (view, create,
  str_replace, insert). Paths are resolved with symlinks followed and refused when they leave
  the repository; writes to protected paths are refused.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.agents.base import Task
from harness.plan.patterns import matching_pattern
from harness.sandbox.environment import Environment
from harness.sandbox.guards import ALWAYS_PROTECTED, readonly_paths
from harness.sandbox.proc import scrubbed_env

BASH = "bash"
EDITOR = "str_replace_based_edit_tool"
QUIET_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "TQDM_DISABLE": "1", "PIP_PROGRESS_BAR": "off"}
EDITOR_COMMANDS = ("view", "create", "str_replace", "insert")


class ToolError(Exception):
    """A refusal or bad input; its message goes back to the model as an error result."""


@dataclass
class ToolOutput:
    text: str
    is_error: bool = False


def truncate(text: str, limit: int) -> str:
    """`text` cut to its first and last `limit // 2` characters with a note in between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[... {omitted} characters omitted ...]\n{text[-half:]}"


class Workspace:
    """Tool execution inside `root`, with `protected` globs added to the always-protected paths.

    Use as a context manager (or call `close`): a sandboxed workspace owns a scratch directory.
    `note` says why a requested sandbox fell back to none.
    """

    def __init__(
        self,
        root: Path,
        *,
        protected: Sequence[str] = (),
        inputs: Sequence[Path] = (),
        env_allow: Sequence[str] = (),
        sandbox_kind: str = "none",
        scratch: Path | None = None,
        command_timeout_s: float = 600.0,
        max_output_chars: int = 16_000,
        hidden: Sequence[str] = (),
    ) -> None:
        self.root = Path(root).resolve()
        self.hidden = tuple(hidden)  # not readable by the editor, and covered in the sandbox (a holdout)
        self.protected = (*ALWAYS_PROTECTED, *protected)
        self.env = scrubbed_env(env_allow, extra=QUIET_ENV)
        self.environment = Environment(sandbox_kind)
        self.sandbox, self.note = self.environment.kind, self.environment.note
        self.command_timeout_s = command_timeout_s
        self.max_output_chars = max_output_chars
        self._own_scratch = scratch is None and self.environment.sandboxed
        self.scratch = Path(tempfile.mkdtemp(prefix="ralph-scratch-")) if self._own_scratch else scratch
        # Existing protected paths and the checks' inputs are mounted read-only in the sandbox; new ones are
        # left to guards.
        self._readonly = [*readonly_paths(self.root, protected), *inputs] if self.environment.sandboxed else []

    @classmethod
    def for_task(cls, task: Task, **options: Any) -> Workspace:
        """The workspace an attempt's tools run in: the task's repository, protections and sandbox."""
        return cls(task.workdir, protected=task.protected, inputs=task.inputs, env_allow=task.env_allow,
                   sandbox_kind=task.sandbox, hidden=task.hidden, **options)

    def close(self) -> None:
        if self._own_scratch and self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- dispatch -------------------------------------------------------------------------
    def run_tool(self, name: str, params: Mapping[str, Any], *, timeout_s: float | None = None) -> ToolOutput:
        """Execute one tool call by its Anthropic name; never raises for bad input."""
        try:
            if name == BASH:
                if params.get("restart"):
                    return ToolOutput("bash restarted (every command already runs in a fresh shell)")
                command = params.get("command")
                if not isinstance(command, str) or not command.strip():
                    raise ToolError("bash needs a non-empty 'command' string")
                return self.bash(command, timeout_s=timeout_s)
            if name == EDITOR:
                return ToolOutput(self.edit(params))
            raise ToolError(f"unknown tool {name!r}; available: {BASH}, {EDITOR}")
        except ToolError as exc:
            return ToolOutput(f"Error: {exc}", is_error=True)
        except OSError as exc:  # e.g. a read-only file or a full disk: the model can react to it
            return ToolOutput(f"Error: {exc.strerror or exc} ({exc.filename or name})", is_error=True)

    # --- paths ----------------------------------------------------------------------------
    def resolve(self, path: str, *, write: bool) -> Path:
        """The real path for `path` (relative to the root, or absolute), refusing escapes and protected writes."""
        if not isinstance(path, str) or not path:
            raise ToolError("a non-empty 'path' string is required")
        given = Path(path) if Path(path).is_absolute() else self.root / path
        real = given.resolve()
        if not real.is_relative_to(self.root):
            raise ToolError(f"{path} is outside the repository {self.root} (symlinks resolved); use a path inside it")
        if any(real.is_relative_to((self.root / h).resolve()) for h in self.hidden):
            raise ToolError(f"{path} is hidden from the agent (an optimize holdout); only the harness reads it")
        if write:
            for candidate in {real, given.parent.resolve() / given.name}:
                if candidate.is_relative_to(self.root):
                    rel = candidate.relative_to(self.root).as_posix()
                    pattern = matching_pattern(rel, self.protected)
                    if pattern is not None:
                        raise ToolError(
                            f"{rel} is protected (matches {pattern!r}); the harness owns it and reverts changes to it"
                        )
        return real

    # --- bash -----------------------------------------------------------------------------
    def bash(self, command: str, *, timeout_s: float | None = None) -> ToolOutput:
        """Run `command` with `bash -c` in the root; output (head and tail) plus the exit code."""
        limit = self.command_timeout_s if timeout_s is None else min(timeout_s, self.command_timeout_s)
        head: list[str] = []
        seen = [0, 0]  # characters of output seen, characters kept in `head`

        def keep_head(line: str) -> None:
            seen[0] += len(line) + 1
            if seen[1] < self.max_output_chars // 2:
                head.append(line)
                seen[1] += len(line) + 1

        done = self.environment.run(
            command,
            self.root,
            timeout_s=max(limit, 0.1),
            env=self.env,
            network=False,
            readonly=self._readonly,
            scratch=self.scratch,
            tail_bytes=self.max_output_chars,
            on_line=keep_head,
            private_home=True,
            hidden=[self.root / h for h in self.hidden],
        )
        output = done.output_tail.rstrip("\n")
        if seen[0] > self.max_output_chars:
            half = self.max_output_chars // 2
            first, last = "\n".join(head)[:half], output[-half:]
            output = f"{first}\n[... {seen[0] - len(first) - len(last)} characters omitted ...]\n{last}"
        if done.timed_out:
            return ToolOutput(
                f"{output}\n[timed out after {limit:.0f}s; the command and its children were killed]", True
            )
        return ToolOutput(f"{output}\n[exit code {done.returncode}]".lstrip("\n"))

    # --- editor ---------------------------------------------------------------------------
    def edit(self, params: Mapping[str, Any]) -> str:
        """One text_editor_20250728 call; raises ToolError with the reason when refused."""
        command = params.get("command")
        if command not in EDITOR_COMMANDS:
            raise ToolError(f"unknown editor command {command!r}; use one of {', '.join(EDITOR_COMMANDS)}")
        path = self.resolve(params.get("path", ""), write=command != "view")
        rel = path.relative_to(self.root).as_posix() or "."
        if command == "view":
            return self._view(path, rel, params.get("view_range"), params.get("max_characters"))
        if command == "create":
            text = params.get("file_text")
            if not isinstance(text, str):
                raise ToolError("create needs 'file_text' (the whole new content)")
            if path.is_dir():
                raise ToolError(f"{rel} is a directory")
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists()
            path.write_text(text)
            return f"{'Overwrote' if existed else 'Created'} {rel} ({len(text.splitlines())} lines)"
        content = self._read_text(path, rel)
        if command == "str_replace":
            return self._str_replace(path, rel, content, params)
        return self._insert(path, rel, content, params)

    def _read_text(self, path: Path, rel: str) -> str:
        if not path.is_file():
            raise ToolError(f"{rel} does not exist or is not a file; create it with the 'create' command")
        try:
            return path.read_text()
        except UnicodeDecodeError:
            raise ToolError(f"{rel} is not a UTF-8 text file") from None

    def _view(self, path: Path, rel: str, view_range: Any, max_chars: Any) -> str:
        limit = max_chars if isinstance(max_chars, int) and max_chars > 0 else self.max_output_chars
        if path.is_dir():
            entries = [
                f"{child.relative_to(path).as_posix()}{'/' if child.is_dir() else ''}"
                for top in _visible(path)
                for child in (top, *(_visible(top) if top.is_dir() and not top.is_symlink() else ()))
            ]
            return truncate(
                f"Files and directories in {rel} (2 levels, hidden ones left out):\n" + "\n".join(entries), limit
            )
        lines = self._read_text(path, rel).splitlines()
        start, end = 1, len(lines)
        if view_range is not None:
            if not (
                isinstance(view_range, list) and len(view_range) == 2 and all(isinstance(v, int) for v in view_range)
            ):
                raise ToolError("view_range must be [start_line, end_line] (1-based; end_line -1 means to the end)")
            start, end = view_range[0], len(lines) if view_range[1] == -1 else view_range[1]
            if not 1 <= start <= max(len(lines), 1) or end < start or end > len(lines):
                raise ToolError(f"view_range {view_range} is outside {rel}, which has {len(lines)} lines")
        numbered = "\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(start, end + 1))
        return truncate(numbered, limit)

    def _str_replace(self, path: Path, rel: str, content: str, params: Mapping[str, Any]) -> str:
        old, new = params.get("old_str"), params.get("new_str", "")
        if not isinstance(old, str) or not old:
            raise ToolError("str_replace needs a non-empty 'old_str'")
        if not isinstance(new, str):
            raise ToolError("'new_str' must be a string")
        count = content.count(old)
        if count == 0:
            raise ToolError(f"old_str was not found in {rel}; view the file and copy the text exactly")
        if count > 1:
            lines = [str(content[:i].count("\n") + 1) for i in _find_all(content, old)]
            raise ToolError(
                f"old_str occurs {count} times in {rel} (lines {', '.join(lines)}); add context to make it unique"
            )
        path.write_text(content.replace(old, new, 1))
        line = content[: content.index(old)].count("\n") + 1
        return f"Edited {rel}: replaced 1 occurrence at line {line}"

    def _insert(self, path: Path, rel: str, content: str, params: Mapping[str, Any]) -> str:
        at = params.get("insert_line")
        text = params.get("insert_text", params.get("new_str"))
        lines = content.splitlines(keepends=True)
        if not isinstance(at, int) or not 0 <= at <= len(lines):
            raise ToolError(f"insert needs 'insert_line' between 0 and {len(lines)} (the line to insert after)")
        if not isinstance(text, str):
            raise ToolError("insert needs 'insert_text'")
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.insert(at, text if text.endswith("\n") else text + "\n")
        path.write_text("".join(lines))
        return f"Inserted {len(text.splitlines())} lines into {rel} after line {at}"


def _visible(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def _find_all(text: str, sub: str) -> list[int]:
    found, start = [], text.find(sub)
    while start != -1:
        found.append(start)
        start = text.find(sub, start + 1)
    return found
