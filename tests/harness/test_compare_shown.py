"""A comparison's figures reach every place a person reads: the check's line in progress.txt, the
status board (terminal, --json, docs/STATUS.md), the HTML report and the commit's trailers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.harness.conftest import commit_plan, git

# Five seeds of a treatment (a) and its control (b); the run check writes them, so they are fresh.
TREATMENT = [0.952, 0.941, 0.929, 0.930, 0.942]
CONTROL = [0.914, 0.892, 0.900, 0.886, 0.901]
WRITE = ("mkdir -p runs && python -c \"import json, sys; s = int(sys.argv[1]); "
         f"json.dump({{'eval.r2': {TREATMENT}[s]}}, open(f'runs/a-s{{s}}.json', 'w')); "
         f"json.dump({{'eval.r2': {CONTROL}[s]}}, open(f'runs/b-s{{s}}.json', 'w'))\" {{seed}}")


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def compare_repo(repo: Path, prd_dict: dict[str, Any]) -> Path:
    prd_dict["features"][0]["verify"] = [
        {"name": "runs", "run": WRITE, "seeds": [0, 1, 2, 3, 4]},
        {"name": "actions help", "compare": {
            "a": {"file": "runs/a-s{seed}.json", "key": "eval.r2"}, "b": {"file": "runs/b-s{seed}.json", "key": "eval.r2"},
            "seeds": [0, 1, 2, 3, 4], "paired": True, "test": "greater"}},
    ]
    return commit_plan(repo, prd_dict, "runs/\n")


def test_the_comparison_is_on_the_record_the_board_the_report_and_the_commit(repo: Path, prd_dict) -> None:
    compare_repo(repo, prd_dict)
    verified = ralph("verify", "FEAT-1", "--commit", "-C", repo)
    assert verified.exit_code == 0, verified.output
    summary = "a - b = +0.0402, 90% CI [+0.03"  # the difference and the start of its interval
    full = "(paired t-test, n = 5 pairs)"

    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Ralph-Comparison,valueonly)")
    assert trailers.startswith(f"actions help: {summary.replace(',', ';')}")  # a trailer's commas separate values
    assert trailers.endswith(full.replace(",", ";"))
    assert "actions help.p_value=" in git(repo, "log", "-1", "--format=%(trailers:key=Ralph-Metrics,valueonly)")

    progress = (repo / "progress.txt").read_text()
    assert "  - pass    actions help: eval.r2: a - b = +0.0402 (means 0.9388 vs 0.8986), 90% CI [+0.03" in progress
    assert "by a paired t-test on 5 pairs: a > b is shown" in progress

    board = json.loads(ralph("status", "--json", "-C", repo).output)
    row = board["phases"][0]["features"][0]
    (comparison,) = row["comparisons"]
    assert comparison["test"] == "paired t-test" and comparison["n"] == 5 and comparison["verdict"] == "pass"
    assert comparison["p_value"] < 0.05 and comparison["ci"][0] > 0
    assert comparison["diff"] == pytest.approx(sum(comparison["ci"]) / 2)  # a t interval is centred on the mean
    assert "actions help.diff" not in row["metrics"]  # shown as the comparison, not twice

    text = ralph("status", "-C", repo).output
    assert "Δ=+0.0402 p=0.00014" in text and f"FEAT-1: actions help: {summary}" in text
    assert ralph("status", "--write", "-C", repo).exit_code == 0
    assert f"actions help: {summary}" in (repo / "docs/STATUS.md").read_text()
    assert ralph("report", "-C", repo, "--out", repo / "report.html").exit_code == 0
    assert f"<span>actions help: {summary}" in (repo / "report.html").read_text()
