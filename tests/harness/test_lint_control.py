"""`ralph validate` flags a learning or comparison claim gated against a constant with no control (warning; error
with --strict): a metric gate whose key names a difference, in a list of checks with no `compare` check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.plan.lint import CONTROL_HINT, difference_key, plan_findings
from harness.plan.prd import parse_prd
from tests.harness.conftest import validate_both_ways


def gate(key: str, **extra: Any) -> dict[str, Any]:
    return {"name": "learned", "metric": {"file": "runs/q.json", "key": key, "op": ">", "value": 0.0}, **extra}


COMPARE = {"name": "beats control", "compare": {
    "a": {"file": "runs/q-s{seed}.json", "key": "eval.acc"}, "b": {"file": "runs/c-s{seed}.json", "key": "eval.acc"},
    "seeds": [0, 1, 2, 3, 4], "paired": True, "test": "greater"}}


def control_findings_for(prd_dict: dict[str, Any], *checks: dict[str, Any]) -> list[str]:
    prd_dict["features"][0]["verify"][1:] = list(checks)
    return [f.message for f in plan_findings(parse_prd(prd_dict)) if f.kind == "no control"]


@pytest.mark.parametrize("key", ["gain.linacc_agg", "delta.code_loss", "diff_plus_spread", "runs.lora.val_loss_drop",
                                 "paired.mean_minus_std", "probe_gain_over_random_init.x", "Δacc", "acc_vs_control"])
def test_keys_that_name_a_difference(key: str) -> None:
    assert difference_key(key)


@pytest.mark.parametrize("key", ["eval.linacc_agg", "eval.collapsed", "qlora_weights_ratio", "gainful", "eval.drops"])
def test_keys_that_do_not(key: str) -> None:
    assert not difference_key(key)


def seeded(key: str) -> dict[str, Any]:
    check = gate(key, seeds=[0, 1, 2])
    check["metric"]["file"] = "runs/q-s{seed}.json"
    return check


def test_a_difference_over_seeds_gated_against_a_constant_without_a_control_is_flagged(prd_dict) -> None:
    (message,) = control_findings_for(prd_dict, seeded("gain.acc"))
    assert message == ("FEAT-1 / learned: 'gain.acc' > 0 over 3 seeds states a difference against a constant, and no "
                       "'compare' check in it tests the claim against the control's own seed-to-seed noise")
    (message,) = control_findings_for(prd_dict, gate("diff_plus_spread"))  # `lab diff`'s output: a spread over seeds
    assert message.startswith("FEAT-1 / learned: 'diff_plus_spread' > 0 (a spread over seeds) states a difference")


def test_not_flagged_with_a_compare_check_on_a_plain_figure_or_on_one_run(prd_dict) -> None:
    assert control_findings_for(prd_dict, seeded("gain.acc"), COMPARE) == []
    assert control_findings_for(prd_dict, seeded("eval.acc")) == []
    assert control_findings_for(prd_dict, gate("gain.acc")) == []  # a smoke run's gain claims nothing about noise


def test_phase_lists_are_read_and_a_compare_elsewhere_does_not_count(prd_dict) -> None:
    prd_dict["phases"][0]["exit"].append(seeded("gain.acc"))
    prd_dict["features"][0]["verify"].append(COMPARE)  # another list's control
    found = [f for f in plan_findings(parse_prd(prd_dict)) if f.kind == "no control"]
    assert [(f.feature, f.message.split(":")[0]) for f in found] == [("phase 1", "phase 1 exit / learned")]


def test_validate_warns_and_strict_refuses_with_the_fix(tmp_path: Path, prd_dict) -> None:
    prd_dict["features"][0]["verify"].append(seeded("gain.acc"))
    lenient, strict = validate_both_ways(tmp_path, prd_dict)
    assert lenient.exit_code == 0 and lenient.output.count("warning: FEAT-1 / learned: 'gain.acc'") == 1
    assert strict.exit_code == 2 and strict.output.count("error: FEAT-1 / learned: 'gain.acc'") == 1
    assert CONTROL_HINT[:60] in " ".join(strict.output.split())
