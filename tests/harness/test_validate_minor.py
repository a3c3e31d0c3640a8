"""`ralph validate` catches two quiet mistakes a new user made (issue 24, minor): a threshold written as a string,
and a phase that asks for approval but has no features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness.conftest import validate_both_ways


def test_a_threshold_in_quotes_is_refused_not_coerced(tmp_path: Path, prd_dict: dict[str, Any]) -> None:
    prd_dict["features"][0]["verify"][1]["metric"]["value"] = "0.93"
    lenient, _ = validate_both_ways(tmp_path, prd_dict)
    assert lenient.exit_code == 2, lenient.output
    assert "features[0].verify[1].metric.value" in lenient.output


def test_a_phase_that_asks_for_approval_without_features_is_flagged(tmp_path: Path, prd_dict: dict[str, Any]) -> None:
    prd_dict["phases"].append({"id": 9, "name": "Later", "approval": True})
    lenient, _ = validate_both_ways(tmp_path, prd_dict)
    assert lenient.exit_code == 0 and "phase 9: asks for approval but has no features" in lenient.output
