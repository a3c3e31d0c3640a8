"""Gate checks, file loading, rendering and exit codes."""

import json

import pytest
from rich.console import Console

from lab.eval.gates import Gate, GateConfigError, check_gates, gate_command_exit_code, gate_table, load_gates, parse_gate

RESULTS = {"eval.linacc_agg": 0.42, "eval.r2_equi": 0.1, "eval.rankme_enc": 88.0, "provenance": {"seed": 0}, "eval.note": "x"}


def test_each_operator_passes_and_fails_as_written():
    cases = [(">=", 0.42, True), (">=", 0.43, False), (">", 0.42, False), ("<=", 0.42, True),
             ("<", 0.42, False), ("<", 0.5, True), ("==", 0.42, True), ("==", 0.4200001, False)]
    for op, value, expected in cases:
        report = check_gates(RESULTS, [Gate(key="eval.linacc_agg", op=op, value=value)])
        assert report.passed is expected, (op, value)
        assert report.results[0].actual == pytest.approx(0.42)


def test_missing_key_fails_naming_key_and_close_matches():
    report = check_gates(RESULTS, [Gate(key="eval.linacc_ag", op=">=", value=0.3)])
    r = report.results[0]
    assert not report.passed and r.actual is None
    assert "'eval.linacc_ag' not in results" in r.reason and "eval.linacc_agg" in r.reason


def test_nested_keys_and_non_numbers():
    report = check_gates(RESULTS, [parse_gate("provenance.seed == 0"), parse_gate("eval.note >= 1")])
    assert report.results[0].passed
    assert not report.results[1].passed and "not a finite number" in report.results[1].reason
    assert check_gates({"a": float("nan")}, [parse_gate("a >= 0")]).failures[0].key == "a"


def test_exit_codes():
    assert gate_command_exit_code(check_gates(RESULTS, [parse_gate("eval.r2_equi > 0")])) == 0
    assert gate_command_exit_code(check_gates(RESULTS, [parse_gate("eval.r2_equi > 0.5")])) == 1
    assert gate_command_exit_code(check_gates(RESULTS, [])) == 2


def test_load_gates_from_list_json_and_config_section(tmp_path):
    listing = tmp_path / "gates.json"
    listing.write_text(json.dumps([{"key": "eval.r2_equi", "op": ">", "value": 0}]))
    assert load_gates(listing) == [Gate(key="eval.r2_equi", op=">", value=0.0)]
    config = tmp_path / "run.yaml"
    config.write_text("model: {dim: 512}\ngates:\n  - eval.linacc_agg >= 0.3\n  - {key: eval.rankme_enc, op: '>', value: 10}\n")
    gates = load_gates(config)
    assert [str(g) for g in gates] == ["eval.linacc_agg >= 0.3", "eval.rankme_enc > 10"]
    assert check_gates(RESULTS, gates).passed


@pytest.mark.parametrize(("text", "message"), [
    ("model: {}\n", "no 'gates:' section"),
    ("gates: {a: 1}\n", "gates must be a list"),
    ("gates:\n  - {key: a, op: '=>', value: 1}\n", "gate #1: op"),
    ("gates:\n  - a >= 1\n  - a ~ 2\n", "gate #2: 'a ~ 2' is not of the form"),
    ("gates:\n  - {key: a, op: '>=', value: high}\n", "value"),
    ("gates: [\n", "not valid YAML"),
])
def test_malformed_gate_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(GateConfigError, match=message):
        load_gates(path)


def test_missing_gate_file():
    with pytest.raises(GateConfigError, match="gate file not found"):
        load_gates("/nonexistent/gates.yaml")


def test_table_renders_every_gate():
    report = check_gates(RESULTS, [parse_gate("eval.linacc_agg >= 0.3"), parse_gate("eval.missing < 1")])
    console = Console(record=True, width=200)
    console.print(gate_table(report))
    text = console.export_text()
    assert "PASS" in text and "FAIL" in text and "eval.missing" in text


def test_failing_gate_on_a_collapsed_run_says_collapsed() -> None:
    results = {"gain.linacc_agg": 0.0, "eval.rankme_enc": 1.01,
               "eval.collapse_reason": "collapsed: RankMe(z) 1.01 < 2"}
    report = check_gates(results, [parse_gate("gain.linacc_agg >= 0.05"), parse_gate("eval.rankme_enc >= 1")])
    failed, passed = report.results
    assert not failed.passed and failed.reason.startswith("collapsed: RankMe(z) 1.01 < 2")
    assert passed.passed and "collapsed" not in passed.reason
    healthy = check_gates({"gain.linacc_agg": 0.0}, [parse_gate("gain.linacc_agg >= 0.05")])
    assert "collapsed" not in healthy.results[0].reason
