"""Metric gates: thresholds on a run's results → pass/fail with reasons and an exit code.

A gate is ``{key, op, value}`` with op in ``>= > <= < ==``, decided by the harness's own rule, read
through lab/results.py, so ``lab gate`` and ``ralph`` agree about one file
(tests/lab/test_gate_contract.py): ``==`` within a relative 1e-9 and an absolute 1e-12; a key is
looked up flat first (results.json is flat: ``"eval.linacc_agg"``), then as dots through nested
objects (longest prefix first) and into lists by index. A missing key, a value that is not a finite
number, or a failed comparison fails the gate with a reason; a missing key's reason lists the
closest existing keys. When the results say the run collapsed (``eval.collapse_reason``, written
by ``lab eval``), every failing gate's reason starts with it.

Gate files (``load_gates``): YAML or JSON holding either a list of gates or a mapping with a
``gates:`` list (a run config). Each gate is a mapping ``{key: …, op: …, value: …}`` or the
string shorthand ``"eval.linacc_agg >= 0.3"``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.table import Table

from lab.errors import LabError
from lab.results import find, holds, number

Op = Literal[">=", ">", "<=", "<", "=="]

COLLAPSE_KEY = "eval.collapse_reason"  # set by `lab eval` when the representation collapsed
_SHORTHAND = re.compile(r"^\s*(\S+)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")


class GateConfigError(LabError, ValueError):
    """A gate file or gate entry is malformed; the message says which entry and why."""


class Gate(BaseModel):
    """One threshold: results[key] op value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    op: Op
    value: float

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value:g}"


class GateResult(BaseModel):
    """The verdict on one gate; actual is None when the key is missing or not a number."""

    key: str
    op: Op
    threshold: float
    actual: float | None
    passed: bool
    reason: str


class GateReport(BaseModel):
    """All verdicts; passes when every gate passes (and at least one gate was checked)."""

    results: list[GateResult]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]


def parse_gate(entry: Any, where: str = "gate") -> Gate:
    """A Gate from a mapping {key, op, value} or a string "KEY OP VALUE"; GateConfigError otherwise."""
    if isinstance(entry, str):
        m = _SHORTHAND.match(entry)
        if not m:
            raise GateConfigError(f"{where}: {entry!r} is not of the form 'KEY OP VALUE' with OP one of >= > <= < ==")
        entry = {"key": m.group(1), "op": m.group(2), "value": m.group(3)}
    if not isinstance(entry, Mapping):
        raise GateConfigError(f"{where}: expected a mapping {{key, op, value}} or a string 'KEY OP VALUE', got {type(entry).__name__}")
    try:
        return Gate.model_validate(dict(entry))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'gate'}: {e['msg']}" for e in err.errors())
        raise GateConfigError(f"{where}: {problems}") from None


def gates_from_data(data: Any, source: str = "gates") -> list[Gate]:
    """Gates from loaded YAML/JSON: a list, or a mapping whose ``gates`` entry is a list."""
    if isinstance(data, Mapping):
        if "gates" not in data:
            raise GateConfigError(f"{source}: no 'gates:' section (top-level keys: {', '.join(map(str, data)) or 'none'})")
        data = data["gates"]
    if not isinstance(data, list):
        raise GateConfigError(f"{source}: gates must be a list, got {type(data).__name__}")
    return [parse_gate(entry, f"{source}: gate #{i + 1}") for i, entry in enumerate(data)]


def load_gates(path: str | Path) -> list[Gate]:
    """Gates from a YAML/JSON file: a list of gates, or a run config with a ``gates:`` section."""
    path = Path(path)
    if not path.is_file():
        raise GateConfigError(f"gate file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise GateConfigError(f"{path}: not valid YAML/JSON: {err}") from None
    return gates_from_data(data, str(path))


def _flat_keys(results: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for k, v in results.items():
        name = f"{prefix}{k}"
        yield name
        if isinstance(v, Mapping):
            yield from _flat_keys(v, f"{name}.")


def lookup(data: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """(found, value) for key, by the harness's rule (lab/results.py `find`)."""
    return find(data, key)


def check_gate(results: Mapping[str, Any], gate: Gate) -> GateResult:
    """The verdict on one gate against a results mapping."""
    verdict = {"key": gate.key, "op": gate.op, "threshold": gate.value}
    found, raw = lookup(results, gate.key)
    if not found:
        close = difflib.get_close_matches(gate.key, list(_flat_keys(results)), n=3, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        return GateResult(**verdict, actual=None, passed=False, reason=f"key {gate.key!r} not in results{hint}")
    actual = number(raw)
    if actual is None:
        return GateResult(**verdict, actual=None, passed=False, reason=f"{gate.key} is {raw!r}, not a finite number")
    passed = holds(actual, gate.op, gate.value)
    relation = "meets" if passed else "fails"
    reason = f"{actual:.6g} {relation} {gate.op} {gate.value:g}"
    collapse = results.get(COLLAPSE_KEY)
    if not passed and isinstance(collapse, str):
        reason = f"{collapse}; {reason}"
    return GateResult(**verdict, actual=actual, passed=passed, reason=reason)


def check_gates(results: Mapping[str, Any], gates: list[Gate]) -> GateReport:
    """Check every gate against results (a run's results.json, flat or nested)."""
    return GateReport(results=[check_gate(results, g) for g in gates])


def gate_table(report: GateReport, title: str = "gates") -> Table:
    """A rich table of the verdicts: key, op, threshold, actual, PASS/FAIL, reason."""
    table = Table(title=title)
    for col in ("key", "op", "threshold", "actual", "verdict", "reason"):
        table.add_column(col, justify="right" if col in ("threshold", "actual") else "left")
    for r in report.results:
        actual = "—" if r.actual is None else f"{r.actual:.4g}"
        verdict = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
        table.add_row(r.key, r.op, f"{r.threshold:g}", actual, verdict, r.reason)
    return table


def gate_command_exit_code(report: GateReport) -> int:
    """0 when every gate passes, 1 when any fails, 2 when there were no gates to check."""
    if not report.results:
        return 2
    return 0 if report.passed else 1
