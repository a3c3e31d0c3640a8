"""`lab compare`: grouping by seed suffix, mean ± sample std, the table/JSON/plot it writes, --feature."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from typer.testing import CliRunner

from lab.cli import app

runner = CliRunner()
R2 = {"act": [0.97, 0.98, 0.99], "noact": [0.95, 0.94, 0.96]}


def _runs(root: Path) -> list[Path]:
    dirs = []
    for group, values in R2.items():
        for seed, r2 in enumerate(values):
            run = root / "runs" / f"{group}-s{seed}"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps({"eval.r2_equi": r2, "eval.linacc_agg": 0.5 + seed / 10,
                                                          "provenance.run": run.name, "provenance.seed": seed}))
            dirs.append(run)
    return dirs


def test_groups_seeds_and_reports_mean_and_sample_std(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", *map(str, _runs(tmp_path)), "--metric", "eval.r2*", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "compare.json").read_text())
    assert set(record["metrics"]) == {"act", "noact"}
    for group, values in R2.items():
        stat = record["metrics"][group]["eval.r2_equi"]
        assert stat["n"] == 3 and abs(stat["mean"] - statistics.fmean(values)) < 1e-12
        assert abs(stat["std"] - statistics.stdev(values)) < 1e-12
    assert "eval.linacc_agg" not in record["metrics"]["act"]  # only the metrics asked for
    table = (out / "compare.md").read_text()
    assert "| `eval.r2_equi` | 0.980 ± 0.010 (n=3) | 0.950 ± 0.010 (n=3) | -0.030 |" in table
    assert (out / "compare.png").stat().st_size > 10_000


def test_feature_runs_come_from_its_eval_checks(tmp_path: Path) -> None:
    _runs(tmp_path)
    prd = tmp_path / "PRD.json"
    prd.write_text(json.dumps({"features": [{"id": "F", "verify": [
        {"name": "train", "run": "lab train x.yaml"},
        {"name": "eval", "run": "lab eval " + str(tmp_path / "runs" / "noact-s{seed}"), "seeds": [0, 1, 2]}]}]}))
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(tmp_path / "runs" / "act-s0"), "--feature", "F", "--prd", str(prd),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "compare.json").read_text())
    assert [r["group"] for r in record["runs"]] == ["act", "noact", "noact", "noact"]
    assert record["metrics"]["act"]["eval.r2_equi"]["std"] is None  # one run: no spread claimed
    assert set(record["metrics"]["act"]) == {"eval.linacc_agg", "eval.r2_equi"}  # default: headline keys present


def test_bad_input_is_one_line_with_the_fix(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["compare", str(tmp_path / "runs" / "none"), "--out", str(tmp_path / "c")])
    assert missing.exit_code == 2 and "no results at" in missing.output
    (tmp_path / "r.json").write_text(json.dumps({"eval.r2_equi": 0.9}))
    nometric = runner.invoke(app, ["compare", str(tmp_path / "r.json"), "-m", "eval.nope", "--out", str(tmp_path / "c")])
    assert nometric.exit_code == 2 and "no metric matches eval.nope" in nometric.output
    nofeature = runner.invoke(app, ["compare", "--feature", "X", "--prd", str(tmp_path / "r.json")])
    assert nofeature.exit_code == 2 and "no feature 'X'" in nofeature.output
    nothing = runner.invoke(app, ["compare"])
    assert nothing.exit_code == 2 and "name at least one run" in nothing.output
