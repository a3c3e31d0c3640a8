"""Figures without a gate: a feature's `report` names figures read (with the gates' reader) from files its checks
wrote, recorded with the evidence and shown on the board, the approval panel, `ralph report` and the commit; a
missing one never fails the feature but says so."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import app
from harness.plan.prd import PRDError, ReportFigure, json_schema, parse_prd
from harness.project import Project
from harness.run.loop import PhaseRunner, RunSettings
from harness.views.live import RunView
from tests.harness.conftest import commit_plan, git

VALUES = [0.41, 0.44, 0.47]
WRITE = ("mkdir -p runs && python -c \"import json, sys; s = int(sys.argv[1]); "
         f"json.dump({{'eval.acc': {VALUES}[s], 'gain': {{'acc': [0.1, 0.2][s % 2]}}, 'curve': [0.1, 0.2]}}, "
         "open(f'runs/q-s{s}.json', 'w'))\" {seed}")


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def report_repo(repo: Path, prd_dict: dict[str, Any], report: list[Any]) -> Path:
    prd_dict["features"][0]["verify"] = [
        {"name": "runs", "run": WRITE, "seeds": [0, 1, 2]},
        {"name": "accuracy", "seeds": [0, 1, 2], "metric": {"file": "runs/q-s{seed}.json", "key": "eval.acc",
                                                            "op": ">=", "value": 0.3}},
    ]
    prd_dict["features"][0]["report"] = report
    return commit_plan(repo, prd_dict, "runs/\n.ralph/\n")


def test_report_figures_are_read_recorded_and_shown_everywhere(repo: Path, prd_dict) -> None:
    report_repo(repo, prd_dict, [
        "gain.acc",  # a bare key: read from the file the gates read, for their seeds
        {"file": "runs/q-s{seed}.json", "key": "curve.1", "seeds": [0], "name": "second entry"},  # list index
        {"file": "runs/q-s0.json", "key": "eval.f1"},  # not written: missing, and says so
    ])
    verified = ralph("verify", "FEAT-1", "--commit", "-C", repo)
    assert verified.exit_code == 0, verified.output  # the missing figure fails nothing
    shown = "gain.acc = 0.1333 ± 0.058 (std; n = 3)"
    missing = "eval.f1: missing (key 'eval.f1' not found in runs/q-s0.json"

    state = Project.open(repo).ledger.feature("FEAT-1")
    assert state.status == "passing"
    (gain, second, f1) = [v for e in state.last_evidence for v in e.report]
    assert gain.per_seed == {0: 0.1, 1: 0.2, 2: 0.1} and gain.value == pytest.approx(0.4 / 3) and gain.n == 3
    assert second.text() == "second entry = 0.2" and f1.value is None and f1.text().startswith(missing)

    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Ralph-Report,valueonly)").splitlines()
    assert trailers[:2] == [shown, "second entry = 0.2"] and trailers[2].startswith(missing)
    assert "Ralph-Checks: runs=pass, accuracy=pass" in git(repo, "log", "-1", "--format=%B")  # not a check

    board = json.loads(ralph("status", "--json", "-C", repo).output)
    row = board["phases"][0]["features"][0]
    assert [r["text"] for r in row["report"]][:2] == [shown, "second entry = 0.2"] and row["failing"] == []
    text = " ".join(ralph("status", "-C", repo).output.replace("│", " ").split())  # the panel wraps long lines
    assert f"FEAT-1: report: {shown}" in text and "FEAT-1: report: eval.f1: missing (key 'eval.f1' not found" in text
    assert ralph("status", "--write", "-C", repo).exit_code == 0
    assert shown in (repo / "docs/STATUS.md").read_text()
    assert ralph("report", "-C", repo, "--out", repo / "report.html").exit_code == 0
    assert f"<span>{shown}</span>" in (repo / "report.html").read_text()

    view = RunView(Console(file=open(os.devnull, "w")), "phase 1")
    panel = PhaseRunner(Project.open(repo), 1, None, RunSettings(), view).summary()
    assert f"    report: {shown}" in panel and "    report: eval.f1: missing" in panel


def test_a_report_file_the_checks_did_not_write_is_missing_not_stale(repo: Path, prd_dict) -> None:
    """Report files are set aside before the checks like a gate's: a file left from before cannot be reported."""
    report_repo(repo, prd_dict, [{"file": "runs/old.json", "key": "eval.acc"}])
    (repo / "runs").mkdir(exist_ok=True)
    (repo / "runs" / "old.json").write_text('{"eval.acc": 0.99}')
    assert ralph("verify", "FEAT-1", "-C", repo).exit_code == 0
    (figure,) = [v for e in Project.open(repo).ledger.feature("FEAT-1").last_evidence for v in e.report]
    assert figure.value is None and "runs/old.json not found" in figure.missing
    assert (repo / "runs" / "old.json").read_text() == '{"eval.acc": 0.99}'  # put back afterwards


def test_a_bare_key_needs_exactly_one_gate_file(prd_dict) -> None:
    prd_dict["features"][1]["report"] = ["eval.acc"]  # FEAT-2 gates nothing
    with pytest.raises(PRDError, match="'eval.acc' is a bare key.*they read 0 \\(none\\)"):
        parse_prd(prd_dict)
    del prd_dict["features"][1]["report"]
    prd_dict["features"][0]["report"] = ["eval.acc", {"file": "other.json", "key": "eval.acc"}]
    with pytest.raises(PRDError, match="report: eval.acc named twice"):
        parse_prd(prd_dict)
    prd_dict["features"][0]["report"] = ["eval.f1"]
    (figure,) = parse_prd(prd_dict).features[0].report_figures()
    assert figure == ReportFigure(file="result.json", key="eval.f1")


@pytest.mark.parametrize(("figure", "problem"), [
    ({"file": "runs/q-s{seed}.json", "key": "k"}, "uses {seed} but has no 'seeds'"),
    ({"file": "runs/q.json", "key": "k", "seeds": [0]}, "neither 'file' nor 'key' has a {seed}"),
])
def test_seeds_and_placeholders_agree(prd_dict, figure: dict[str, Any], problem: str) -> None:
    prd_dict["features"][0]["report"] = [figure]
    with pytest.raises(PRDError, match=problem.replace("{", "\\{").replace("}", "\\}")):
        parse_prd(prd_dict)


def test_the_schema_documents_report() -> None:
    feature = json_schema()["$defs"]["Feature"]["properties"]["report"]
    assert "never gating" in feature["description"] and "bare key" in feature["description"]


def test_a_malformed_entry_is_named_by_its_path_with_a_hint(prd_dict) -> None:
    prd_dict["features"][0]["report"] = [{"file": "x.json"}, {"file": "a.json", "key": "b", "sedes": [1]}]
    with pytest.raises(PRDError) as caught:
        parse_prd(prd_dict)
    assert caught.value.problems == ["features[0].report[0].key: required field is missing",
                                     "features[0].report[1].sedes: unknown field; did you mean 'seeds'? (allowed: "
                                     "file, key, seeds, name)"]


def test_report_files_are_set_aside_and_come_back_from_jobs_like_a_gates(prd_dict) -> None:
    """`metric_files` decides what is set aside before the checks and what a Ray job sends back."""
    from harness.judge.freshness import metric_files

    prd_dict["features"][0]["report"] = [{"file": "runs/q-s{seed}.json", "key": "k", "seeds": [0, 1]}]
    assert metric_files(parse_prd(prd_dict).features[0]) == ["result.json", "runs/q-s0.json", "runs/q-s1.json"]
