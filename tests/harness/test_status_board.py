"""`ralph status` at 80 columns: no figure is cut mid-number; names (a figure's, a check's) are text, never
rich markup."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from harness.views.status import _fit
from tests.harness.conftest import commit_plan

TREATMENT = [0.952, 0.941, 0.929]
CONTROL = [0.914, 0.892, 0.900]
WRITE = ("mkdir -p runs && python -c \"import json, sys; s = int(sys.argv[1]); "
         f"json.dump({{'eval.linear_probe_accuracy_at_m5': {TREATMENT}[s], 'b': {CONTROL}[s]}}, "
         "open(f'runs/a-s{s}.json', 'w'))\" {seed}")


def test_the_board_keeps_figures_whole_and_their_labels_at_80_columns(repo: Path, prd_dict) -> None:
    prd_dict["features"][0]["title"] = "a title long enough that the board has to shorten it somewhere"
    prd_dict["features"][0]["verify"] = [
        {"name": "runs", "run": WRITE, "seeds": [0, 1, 2]},
        {"name": "probe[all seeds]", "seeds": [0, 1, 2], "metric": {"file": "runs/a-s{seed}.json",
                                                         "key": "eval.linear_probe_accuracy_at_m5", "op": ">=",
                                                         "value": 0.5}},
        {"name": "beats", "compare": {"a": {"file": "runs/a-s{seed}.json", "key": "eval.linear_probe_accuracy_at_m5"},
                                      "b": {"file": "runs/a-s{seed}.json", "key": "b"}, "seeds": [0, 1, 2],
                                      "paired": True, "test": "greater"}},
    ]
    prd_dict["features"][0]["report"] = [{"file": "runs/a-s0.json", "key": "b", "name": "b[seed=0]"}]
    commit_plan(repo, prd_dict, "runs/\n.ralph/\n")
    verified = CliRunner().invoke(app, ["verify", "FEAT-1", "-C", str(repo)], env={"COLUMNS": "200"})
    assert verified.exit_code == 0 and "│ probe[all seeds] │" in verified.output, verified.output  # not a style tag
    out = CliRunner().invoke(app, ["status", "-C", str(repo)], env={"COLUMNS": "80"}).output
    board = [line for line in out.splitlines() if line[:1] in "╭│╰"]
    assert board and max(map(len, board)) == 80, out
    row = "\n".join(board)
    assert re.search(r"Δ=\+0\.0387 p=0\.0\d+\s", row), row  # the comparison's difference and p, whole
    assert "b[seed=0] = 0.914" in row  # the label, not eaten as a style tag
    assert "eval.linear…uracy_at_m5=0.9407" in row  # a long name loses its middle; its value stays whole


def test_fit_cuts_names_never_numbers() -> None:
    assert _fit("eval.linacc_agg@M5=0.4123", 20) == "eval.l…agg@M5=0.4123"
    assert _fit("short=1", 20) == "short=1"
    assert _fit("x=0.123456789012345678901234567890", 20) == "x=0.123456789012345678901234567890"
