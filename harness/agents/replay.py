"""A scripted agent: deterministic runs for tests and the offline demo.

The script (YAML or JSON) lists, per feature, one list of actions per attempt:

    features:
      FEAT-010:
        - - {write: src/a.py, content: "x = 1\\n"}   # attempt 1
          - {run: "python -c 'import src.a'"}
          - {say: "wrote a.py"}
        - - {edit: src/a.py, old: "x = 1", new: "x = 2"}   # attempt 2
          - {spend: {input_tokens: 1200, output_tokens: 300, cost_usd: 0.02}}

Actions go through the same tools as a model's calls (tools.Workspace), so refusals and guards
apply. `spend` declares the usage a scripted attempt reports, for exercising budget caps.
Each action is one turn; the attempt stops at the budget's turn, time, cost or token cap.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from harness.agents.base import Budget, Result, ResultStatus, Task, Usage
from harness.agents.tools import BASH, EDITOR, Workspace
from harness.agents.transcript import Transcript, usage_dict

ACTION_FIELDS: dict[str, set[str]] = {
    "write": {"write", "content"},
    "edit": {"edit", "old", "new"},
    "run": {"run", "timeout_s"},
    "say": {"say"},
    "spend": {"spend"},
}
SPEND_FIELDS = {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cost_usd"}


class ReplayScriptError(ValueError):
    """The script cannot be used; the message names the file and the offending entry."""


def _check_action(where: str, action: Any) -> dict[str, Any]:
    if not isinstance(action, dict):
        raise ReplayScriptError(f"{where}: an action must be a mapping like {{write: path, content: text}}")
    kinds = [k for k in ACTION_FIELDS if k in action]
    if len(kinds) != 1:
        raise ReplayScriptError(
            f"{where}: an action needs exactly one of {', '.join(ACTION_FIELDS)}; got {sorted(action)}"
        )
    kind = kinds[0]
    unknown = set(action) - ACTION_FIELDS[kind]
    if unknown:
        raise ReplayScriptError(f"{where}: unknown field(s) {sorted(unknown)} for a {kind!r} action")
    required = {"write": ("content",), "edit": ("old", "new")}.get(kind, ())
    for name in (kind, *required):
        value = action.get(name)
        if kind == "spend" and name == "spend":
            if (
                not isinstance(value, dict)
                or not set(value) <= SPEND_FIELDS
                or not all(_number(v) for v in value.values())
            ):
                raise ReplayScriptError(
                    f"{where}: spend takes a mapping of numbers with keys from {sorted(SPEND_FIELDS)}"
                )
        elif not isinstance(value, str):
            raise ReplayScriptError(f"{where}: {kind!r} action needs a string {name!r}")
    if "timeout_s" in action and not (_number(action["timeout_s"]) and action["timeout_s"] > 0):
        raise ReplayScriptError(f"{where}: timeout_s must be a positive number of seconds")
    return action


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_script(path: Path) -> dict[str, list[list[dict[str, Any]]]]:
    """Read and validate a replay script: {feature id: [attempt actions, ...]}."""
    path = Path(path)
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ReplayScriptError(f"cannot read replay script {path}: {exc}") from None
    features = raw.get("features") if isinstance(raw, dict) else None
    if not isinstance(features, dict):
        raise ReplayScriptError(f"{path}: expected a top-level 'features' mapping of feature id to attempts")
    script: dict[str, list[list[dict[str, Any]]]] = {}
    for feature, attempts in features.items():
        if not isinstance(attempts, list) or not all(isinstance(a, list) for a in attempts):
            raise ReplayScriptError(f"{path}: features.{feature} must be a list of attempts, each a list of actions")
        script[str(feature)] = [
            [_check_action(f"{path}: features.{feature}[{i}][{j}]", act) for j, act in enumerate(attempt)]
            for i, attempt in enumerate(attempts)
        ]
    return script


class ReplayAgent:
    """Plays attempt `task.attempt` (1-based) of `task.feature_id` from the script."""

    name = "replay"

    def __init__(self, script_path: Path, *, command_timeout_s: float = 600.0) -> None:
        self.script_path = Path(script_path)
        self.script = load_script(self.script_path)
        self.model = self.script_path.name
        self.command_timeout_s = command_timeout_s

    def run(self, task: Task, budget: Budget) -> Result:
        attempts = self.script.get(task.feature_id, [])
        if not 1 <= task.attempt <= len(attempts):
            return Result(
                "error",
                error=f"replay script {self.script_path} has {len(attempts)} attempt(s) for {task.feature_id}; "
                f"attempt {task.attempt} has no actions",
            )
        log = Transcript(task)
        log.write("start", agent=self.name, script=str(self.script_path), feature=task.feature_id, attempt=task.attempt)
        with Workspace.for_task(task, command_timeout_s=self.command_timeout_s) as ws:
            if ws.note:
                log.write("note", text=ws.note)
            result = self._play(attempts[task.attempt - 1], ws, log, budget)
        log.write("end", status=result.status, turns=result.turns, usage=usage_dict(result.usage), error=result.error)
        result.transcript_path = log.path
        return result

    def _play(self, actions: list[dict[str, Any]], ws: Workspace, log: Transcript, budget: Budget) -> Result:
        deadline = time.monotonic() + budget.timeout_s
        usage, said, last, turn = Usage(), [], "", 0
        status: ResultStatus = "completed"
        try:
            for turn, action in enumerate(actions, start=1):
                if turn > budget.max_turns:
                    status, turn = "turn_limit", turn - 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    status, turn = "timeout", turn - 1
                    break
                output, is_error, last = self._act(action, ws, remaining, said)
                if "spend" in action:
                    usage = usage + Usage(**action["spend"])
                log.write("turn", turn=turn, action=action, output=output, is_error=is_error, usage=usage_dict(usage))
                log.event(turn, last, usage)
                over_cost = budget.max_cost_usd is not None and usage.cost_usd > budget.max_cost_usd
                if over_cost or (budget.max_tokens is not None and usage.total_tokens > budget.max_tokens):
                    status = "budget"
                    break
        except KeyboardInterrupt:
            status = "interrupted"
        return Result(status, summary="\n".join(said), usage=usage, turns=turn, last_action=last)

    def _act(self, action: dict[str, Any], ws: Workspace, remaining: float, said: list[str]) -> tuple[str, bool, str]:
        """Run one action; returns (tool output, is_error, a one-line description)."""
        if "say" in action:
            said.append(action["say"])
            return "", False, f"say: {action['say']}"
        if "spend" in action:
            return "", False, f"spend: {action['spend']}"
        if "run" in action:
            timeout = min(float(action.get("timeout_s", remaining)), remaining)
            out = ws.run_tool(BASH, {"command": action["run"]}, timeout_s=timeout)
            return out.text, out.is_error, f"run: {action['run']}"
        if "write" in action:
            params = {"command": "create", "path": action["write"], "file_text": action["content"]}
            desc = f"write: {action['write']}"
        else:
            params = {
                "command": "str_replace",
                "path": action["edit"],
                "old_str": action["old"],
                "new_str": action["new"],
            }
            desc = f"edit: {action['edit']}"
        out = ws.run_tool(EDITOR, params)
        return out.text, out.is_error, desc
