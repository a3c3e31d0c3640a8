"""`lab gate` and `ralph` decide a gate on one results file by one rule (lab/results.py imports the harness's):
the verdict of `lab gate` equals the harness's metric check on the same file, key, op and threshold, including
the cases where the two copies had drifted (`==` near zero, keys that index lists or need a flat prefix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from harness.judge.checks import run_check
from harness.plan.prd import Check
from lab.cli import app

RESULTS: dict[str, Any] = {
    "eval.linacc_agg": 0.41,
    "tiny": 1e-13,  # equal to 0 within the harness's absolute tolerance (lab gate had none)
    "close": 0.3 + 3e-11,  # equal to 0.3 within the relative 1e-9
    "runs": [{"acc": 0.7}, {"acc": 0.2}],  # lists are indexed (lab gate could not)
    "eval": {"linacc_agg@M5": 0.52, "nested": {"x": 2}},  # a flat prefix, then nested (only the harness tried it)
    "eval.block": {"r2": 0.9},  # a flat key holding an object: "eval.block.r2"
    "flag": True, "text": "0.5", "huge": 10 ** 400,
}
GATES = [
    ("eval.linacc_agg", ">=", 0.3), ("eval.linacc_agg", "<", 0.3), ("tiny", "==", 0.0), ("close", "==", 0.3),
    ("close", ">", 0.3), ("runs.0.acc", ">", 0.5), ("runs.1.acc", ">", 0.5), ("runs.2.acc", ">", 0.5),
    ("eval.linacc_agg@M5", "==", 0.52), ("eval.nested.x", "<=", 2), ("eval.block.r2", ">", 0.8),
    ("missing.key", ">", 0), ("flag", ">=", 1), ("text", ">=", 0), ("huge", ">", 0),
]


def harness_verdict(repo: Path, key: str, op: str, value: float) -> bool:
    check = Check(name="gate", metric={"file": "results.json", "key": key, "op": op, "value": value})
    return run_check(check, repo, default_timeout_s=5).verdict == "pass"


def lab_gate_verdict(repo: Path, key: str, op: str, value: float) -> bool:
    (repo / "gates.yaml").write_text(yaml.safe_dump({"gates": [{"key": key, "op": op, "value": value}]}))
    result = CliRunner().invoke(app, ["gate", str(repo / "results.json"), "--config", str(repo / "gates.yaml")])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code == 0


@pytest.mark.parametrize(("key", "op", "value"), GATES, ids=[f"{k} {o} {v:g}" for k, o, v in GATES])
def test_lab_gate_agrees_with_the_harness(tmp_path: Path, key: str, op: str, value: float) -> None:
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    assert lab_gate_verdict(tmp_path, key, op, value) == harness_verdict(tmp_path, key, op, value)


def test_the_drifted_cases_pass_in_both(tmp_path: Path) -> None:
    """The cases where the copies disagreed, each passing by the harness's rule."""
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    for key, op, value in [("tiny", "==", 0.0), ("runs.0.acc", ">", 0.5), ("eval.block.r2", ">", 0.8)]:
        assert harness_verdict(tmp_path, key, op, value) and lab_gate_verdict(tmp_path, key, op, value)
