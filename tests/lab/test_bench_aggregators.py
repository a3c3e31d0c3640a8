"""`lab bench aggregators` and `lab diff`: tiny runs of the real commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.bench_aggregators import scaling_exponents
from lab.cli import app


def test_bench_aggregators_writes_rows_exponents_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "agg.json"
    args = ["bench", "aggregators", "--seq-len", "8", "--seq-len", "64", "--dim", "16", "--layers", "1",
            "--reps", "1", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    kinds = {r["aggregator"] for r in report["results"]}
    assert {"transformer", "tost"} <= kinds
    for r in report["results"]:
        assert r["ms"] > 0 and r["peak_mib"] > 0 and r["seq_len"] in (8, 64)
    assert set(report["scaling"]) == kinds and out.with_suffix(".png").stat().st_size > 1000
    assert report["scaling"]["tost"]["x8"]["from"] == 8
    bad = CliRunner().invoke(app, ["bench", "aggregators", "--kind", "nope", "--out", str(out)])
    assert bad.exit_code == 2 and "nope" in bad.output


def test_scaling_exponents_recover_known_powers() -> None:
    rows = [{"aggregator": "lin", "seq_len": n, "ms": 2.0 * n} for n in (64, 128, 512)]
    rows += [{"aggregator": "quad", "seq_len": n, "ms": 0.01 * n * n} for n in (64, 128, 512)]
    fits = scaling_exponents(rows)
    assert fits["lin"]["exponent"] == pytest.approx(1.0) and fits["quad"]["exponent"] == pytest.approx(2.0)
    assert fits["lin"]["x8"] == {"from": 64, "to": 512, "time_ratio": pytest.approx(8.0)}
    assert fits["quad"]["x8"]["time_ratio"] == pytest.approx(64.0)


def test_diff_reports_group_means_and_their_difference(tmp_path: Path) -> None:
    files = {}
    for name, value in (("a0", 0.1), ("a1", 0.3), ("b0", 0.5), ("b1", 0.5)):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps({"eval.forgetting": value, "nested": {"x": value}}))
    out = tmp_path / "cmp.json"
    args = ["diff", "--a", str(files["a0"]), "--a", str(files["a1"]), "--b", str(files["b0"]), "--b", str(files["b1"]),
            "--key", "eval.forgetting", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    sample_std = 0.2 / 2 ** 0.5  # of 0.1 and 0.3 (n − 1), the one std of the lab and the harness
    assert report["a"]["mean"] == pytest.approx(0.2) and report["a"]["std"] == pytest.approx(sample_std)
    assert report["diff"] == pytest.approx(-0.3)
    assert report["spread"] == pytest.approx(sample_std)
    assert report["diff_plus_spread"] == pytest.approx(-0.3 + sample_std)
    assert report["diff_minus_spread"] == pytest.approx(-0.3 - sample_std)
    args[-3] = "nested.x"
    assert CliRunner().invoke(app, args).exit_code == 0
    missing = CliRunner().invoke(app, ["diff", "--a", str(tmp_path / "none.json"), "--b", str(files["b0"]), "--key", "k"])
    assert missing.exit_code == 2 and "no results file" in missing.output
    (tmp_path / "broken.json").write_text("{not json")
    broken = CliRunner().invoke(app, ["diff", "--a", str(tmp_path / "broken.json"), "--b", str(files["b0"]), "--key", "k"])
    assert broken.exit_code == 2 and "broken.json is not valid JSON" in broken.output


def test_paired_diff_removes_what_each_seeds_pair_shares_and_refuses_mismatched_seeds(tmp_path: Path) -> None:
    """Seed effects of ±0.1 common to both arms hide a +0.02 effect from the unpaired spread, not from the pairs."""
    def write(name: str, seed: int, value: float) -> str:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"eval.r2_equi": value, "provenance.seed": seed}))
        return str(path)

    shared = [0.0, 0.1, -0.1]  # what a seed's two runs share (the initial network)
    a = [write(f"a{s}", s, 0.5 + shared[s] + 0.02 + 0.002 * s) for s in range(3)]
    b = [write(f"b{s}", s, 0.5 + shared[s]) for s in range(3)]
    out = tmp_path / "paired.json"
    args = ["diff", *(x for f in a for x in ("--a", f)), *(x for f in b for x in ("--b", f)), "--key", "eval.r2_equi",
            "--paired", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["diff_minus_spread"] < 0  # unpaired: the effect is inside the seeds' spread
    assert report["paired"]["diffs"] == pytest.approx([0.02, 0.022, 0.024])
    assert report["paired"]["mean_minus_std"] == pytest.approx(0.022 - 0.002)
    swapped = ["diff", "--a", a[0], "--a", a[1], "--b", b[1], "--b", b[0], "--key", "eval.r2_equi", "--paired"]
    refused = CliRunner().invoke(app, swapped)
    assert refused.exit_code == 2 and "same seed order" in refused.output
    uneven = CliRunner().invoke(app, ["diff", "--a", a[0], "--a", a[1], "--b", b[0], "--key", "eval.r2_equi", "--paired"])
    assert uneven.exit_code == 2 and "same number of files" in uneven.output


@pytest.mark.parametrize("command", [["bench", "aggregators"], ["bench", "views"], ["bench", "train"], ["bench", "stream"]])
def test_a_bad_device_is_a_usage_error_naming_the_option(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--device", "nope"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "--device" in said and "'nope' is not a device name" in said


def test_zero_reps_is_a_usage_error_not_an_empty_minimum() -> None:
    result = CliRunner().invoke(app, ["bench", "aggregators", "--reps", "0"])
    assert result.exit_code == 2 and "--reps" in result.output and "Traceback" not in result.output
