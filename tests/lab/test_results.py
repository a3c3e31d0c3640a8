"""lab/results.py: one results file read once, the harness's key rule, seed groups and named spreads; `lab
compare` given results files (not run folders) groups them by seed."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.cli import app
from lab.results import ResultsError, read, sample_std, summed_spread, value


def test_compare_groups_result_files_by_seed(tmp_path: Path) -> None:
    """Files named for their seeds (no provenance inside) form one group per experiment, not one per file."""
    files = []
    for group, values in {"q": [0.9, 0.92, 0.94], "q-noact": [0.8, 0.83, 0.86]}.items():
        for seed, v in enumerate(values):
            files.append(tmp_path / f"{group}-s{seed}.json")
            files[-1].write_text(json.dumps({"eval": {"r2_equi": v}}))
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", *map(str, files), "-m", "eval.r2_equi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "compare.json").read_text())
    assert list(record["metrics"]) == ["q", "q-noact"]
    stat = record["metrics"]["q"]["eval.r2_equi"]
    assert stat["n"] == 3 and stat["std"] == pytest.approx(statistics.stdev([0.9, 0.92, 0.94]))
    assert [r["seed"] for r in record["runs"]] == [0, 1, 2, 0, 1, 2]


def test_a_results_file_in_a_run_folder_takes_the_folder_name(tmp_path: Path) -> None:
    for seed in (0, 1):
        (tmp_path / f"stream-s{seed}").mkdir()
        (tmp_path / f"stream-s{seed}" / "stream.json").write_text(json.dumps({"k": seed}))
    results = [read(tmp_path / f"stream-s{s}" / "stream.json") for s in (0, 1)]
    assert [(r.name, r.seed, r.group) for r in results] == [("stream-s0", 0, "stream"), ("stream-s1", 1, "stream")]


def test_the_recorded_seed_and_run_win(tmp_path: Path) -> None:
    path = tmp_path / "x-s3.json"
    path.write_text(json.dumps({"provenance.run": "quick_seed7", "provenance": {"seed": 7}}))
    r = read(path)
    assert (r.name, r.seed, r.group) == ("quick_seed7", 7, "quick")


def test_one_key_rule_and_clear_errors(tmp_path: Path) -> None:
    data = {"runs": [{"acc": 0.5}], "eval.x": 1, "flag": True}
    assert value(data, "runs.0.acc", "f.json") == 0.5 and value(data, "eval.x", "f.json") == 1.0
    with pytest.raises(ResultsError, match="f.json has no key 'runs.1.acc'"):
        value(data, "runs.1.acc", "f.json")
    with pytest.raises(ResultsError, match="'flag' in f.json is true, not a finite number"):
        value(data, "flag", "f.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ResultsError, match="holds list, not a JSON object"):
        read(tmp_path / "list.json")


def test_named_spreads() -> None:
    assert sample_std([0.1, 0.3]) == pytest.approx(statistics.stdev([0.1, 0.3])) and sample_std([0.1]) is None
    assert summed_spread([0.1, 0.3], [0.5]) == pytest.approx(statistics.stdev([0.1, 0.3]))


def test_result_files_that_record_their_seed_group_by_name(tmp_path: Path) -> None:
    """A researcher's own files (issue 24): `std_0.json` recording `"seed": 0` (the sklearn template's
    convention), `raw_seed_1.json`: one group per experiment. A bare number that is not the recorded seed stays
    part of the name (`resnet-18`)."""
    tmp_path = tmp_path / "mine"
    tmp_path.mkdir()
    files = []
    for name, seed, acc in [("std_0", 0, 0.97), ("std_1", 1, 0.96), ("raw_seed_0", 0, 0.95), ("raw_seed_1", 1, 0.94)]:
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps({"seed": seed, "test.accuracy": acc}))
    assert [(read(f).seed, read(f).group) for f in files] == [(0, "std"), (1, "std"), (0, "raw"), (1, "raw")]
    (tmp_path / "resnet-18.json").write_text(json.dumps({"seed": 0}))
    assert read(tmp_path / "resnet-18.json").group == "mine"  # no seed suffix: the folder names the run
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", *map(str, files), "-m", "test.accuracy", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "compare.json").read_text())
    assert list(record["metrics"]) == ["std", "raw"] and record["metrics"]["std"]["test.accuracy"]["n"] == 2
