"""`ralph validate` flags statistical gates that pass noise too often (warnings; errors with --strict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.judge.calibration import mean_std_false_pass
from harness.plan.lint import MEAN_STD_FALSE_PASS, STATISTICS_HINT, plan_findings
from harness.plan.prd import parse_prd
from tests.harness.conftest import validate_both_ways


def seeded_gate(n: int, op: str = ">=", agg: str = "mean-std") -> dict[str, Any]:
    return {"name": "learned", "seeds": list(range(n)), "agg": agg,
            "metric": {"file": "runs/q-s{seed}.json", "key": "eval.acc", "op": op, "value": 0.0}}


def compare(**fields: Any) -> dict[str, Any]:
    return {"name": "beats control", "compare": {
        "a": {"file": "runs/q-s{seed}.json", "key": "eval.acc"}, "b": {"file": "runs/c-s{seed}.json", "key": "eval.acc"},
        "seeds": [0, 1, 2, 3, 4], "test": "greater", **fields}}


def findings_for(prd_dict: dict[str, Any], check: dict[str, Any]) -> list[str]:
    prd_dict["features"][0]["verify"][1] = check
    return [f.message for f in plan_findings(parse_prd(prd_dict)) if f.kind == "weak statistics"]


def test_the_printed_rates_are_the_exact_ones() -> None:
    assert MEAN_STD_FALSE_PASS[1] == 0.5  # one seed: std 0, so the gate reads one value, above its mean half the time
    for n in (2, 3, 4):
        assert MEAN_STD_FALSE_PASS[n] == pytest.approx(mean_std_false_pass(n), abs=5e-4)
    assert mean_std_false_pass(5) < 0.05  # why 5 seeds are enough


@pytest.mark.parametrize(("n", "rate"), [(1, "50%"), (3, "11%"), (4, "7%")])
def test_a_mean_std_gate_with_fewer_than_five_seeds_is_flagged(prd_dict, n: int, rate: str) -> None:
    (message,) = findings_for(prd_dict, seeded_gate(n))
    assert message == (f"FEAT-1 / learned: 'mean-std' over {n} seed{'s' * (n > 1)} against the constant 0 passes "
                       f"pure noise about {rate} of the time (when the true mean is at the threshold); a gate should "
                       "pass it at most 5%")


@pytest.mark.parametrize("check", [seeded_gate(5), seeded_gate(3, op="<="), seeded_gate(3, agg="mean"),
                                   compare(paired=True), compare(paired=False),
                                   compare(a={"file": "runs/q-s{seed}.json", "key": "eval.acc", "seeds": [5, 6, 7]})])
def test_strong_enough_or_explicit_plans_are_not_flagged(prd_dict, check: dict[str, Any]) -> None:
    assert findings_for(prd_dict, check) == []


def test_a_comparison_that_could_pair_but_does_not_say_is_flagged(prd_dict) -> None:
    (message,) = findings_for(prd_dict, compare())
    assert message == ("FEAT-1 / beats control: both sides ran seeds [0, 1, 2, 3, 4], but 'paired' is not set, so "
                       "they are compared as two independent groups (Welch t-test)")


def test_phase_checks_are_read_too(prd_dict) -> None:
    prd_dict["phases"][0]["exit"].append(seeded_gate(2))
    (finding,) = [f for f in plan_findings(parse_prd(prd_dict)) if f.kind == "weak statistics"]
    assert finding.feature == "phase 1" and finding.message.startswith("phase 1 exit / learned: 'mean-std' over 2 seeds")


def test_validate_warns_and_strict_refuses_with_the_fix(tmp_path: Path, prd_dict) -> None:
    prd_dict["features"][0]["verify"][1] = seeded_gate(3)
    prd_dict["features"][1]["verify"].append(compare())
    lenient, strict = validate_both_ways(tmp_path, prd_dict)
    statistical = [line for line in lenient.output.splitlines() if line.startswith("warning: FEAT-")
                   and "reads runs/" not in line]  # (the planted gates' files are written by no check: flagged too)
    assert lenient.exit_code == 0 and len(statistical) == 2  # (the plan also has an empty phase)
    assert strict.exit_code == 2 and strict.output.count("error:") == 2 + strict.output.count("reads runs/")
    flat = " ".join(strict.output.split())
    assert STATISTICS_HINT[:60] in flat and "set \"paired\": true when seed s of a and of b share" in flat
    assert "add a check that runs the code" not in flat  # that hint is for features that run nothing
