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


def test_a_gate_on_a_file_no_check_of_its_feature_writes_is_flagged(tmp_path: Path, prd_dict: dict[str, Any]) -> None:
    """Issue 24 (minor): FEAT-2 gates on FEAT-1's result.json, which is set aside before FEAT-2's checks run, so the
    gate can only fail as missing; validate says so and names the feature that writes it."""
    prd_dict["features"][1]["verify"].append(
        {"name": "reuses one's figure", "metric": {"file": "result.json", "key": "eval.acc", "op": ">=", "value": 0.4}})
    lenient, strict = validate_both_ways(tmp_path, prd_dict)
    out = " ".join(lenient.output.split())
    assert lenient.exit_code == 0 and strict.exit_code == 2
    assert ("FEAT-2 / reuses one's figure: reads result.json, and it is written by FEAT-1's checks, not FEAT-2's"
            in out)
    prd_dict["features"][1]["verify"] = prd_dict["features"][1]["verify"][1:]  # gates only, no run at all
    prd_dict["features"][1]["verify"][0]["metric"]["file"] = "other.json"
    out = " ".join(validate_both_ways(tmp_path, prd_dict)[0].output.split())
    assert "FEAT-2 / reuses one's figure: reads other.json, and FEAT-2 has no run check to write it" in out


def test_a_run_that_names_the_gates_folder_counts_as_writing_it(tmp_path: Path, prd_dict: dict[str, Any]) -> None:
    prd_dict["features"][0]["verify"] = [
        {"name": "eval", "run": "python eval.py runs/x-s{seed}", "seeds": [0, 1]},
        {"name": "gate", "metric": {"file": "runs/x-s{seed}/results.json", "key": "acc", "op": ">=", "value": 0.4},
         "seeds": [0, 1]}]
    assert "reads runs/" not in validate_both_ways(tmp_path, prd_dict)[0].output


def test_a_run_that_names_its_run_folder_by_name_writes_it_and_is_blamed_for_it(
        tmp_path: Path, prd_dict: dict[str, Any]) -> None:
    """This repository's S5 (issue 24 follow-up): `lab stream … --set name=step5-none-s{seed}` writes
    runs/step5-none-s{seed}/stream.json without naming its path. Validate said S5's own gate was unwritten (and
    blamed every feature whose command mentions the shared `runs` folder for writing it)."""
    prd_dict["features"][0]["verify"] = [
        {"name": "stream", "run": "lab stream s.yaml --set name=step5-none-s{seed}", "seeds": [0, 1]},
        {"name": "gate", "metric": {"file": "runs/step5-none-s{seed}/stream.json", "key": "acc", "op": ">=",
                                    "value": 0.4}, "seeds": [0, 1]}]
    prd_dict["features"][1]["verify"] = [
        {"name": "train", "run": "python train.py {seed}", "seeds": [0, 1]},
        {"name": "reads the stream", "metric": {"file": "runs/step5-none-s{seed}/stream.json", "key": "acc",
                                                "op": ">=", "value": 0.4}, "seeds": [0, 1]}]
    out = " ".join(validate_both_ways(tmp_path, prd_dict)[0].output.split())
    assert "FEAT-1 / gate" not in out, out
    assert ("FEAT-2 / reads the stream: reads runs/step5-none-s{seed}/stream.json, and it is written by FEAT-1's "
            "checks, not FEAT-2's") in out, out


def test_a_shared_top_folder_is_no_proof_of_who_writes_a_file(tmp_path: Path, prd_dict: dict[str, Any]) -> None:
    """`bash variants.sh crate 0 runs` may write anything under runs/, so it counts for its own feature's gates; it
    is not named as the writer of another feature's file."""
    prd_dict["features"][0]["verify"] = [
        {"name": "train", "run": "bash variants.sh crate {seed} runs", "seeds": [0, 1]},
        {"name": "gate", "metric": {"file": "runs/crate-s{seed}/results.json", "key": "acc", "op": ">=",
                                    "value": 0.4}, "seeds": [0, 1]}]
    prd_dict["features"][1]["verify"] = [
        {"name": "train", "run": "python train.py {seed}", "seeds": [0, 1]},
        {"name": "reads another run", "metric": {"file": "runs/other-s{seed}/results.json", "key": "acc",
                                                 "op": ">=", "value": 0.4}, "seeds": [0, 1]}]
    out = " ".join(validate_both_ways(tmp_path, prd_dict)[0].output.split())
    assert "FEAT-1 / gate" not in out, out
    assert "FEAT-2 / reads another run: reads runs/other-s{seed}/results.json, and none of FEAT-2's run checks" in out
