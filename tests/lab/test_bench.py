from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from lab.bench import bench_train, bench_views
from lab.cli import app


def test_bench_views_reports_both_pipelines() -> None:
    rows = bench_views(["rotation", "augment"], batch_size=8, num_views=2, per_sample=4, reps=1, device=torch.device("cpu"))
    assert [r["kind"] for r in rows] == ["rotation", "augment"]
    for r in rows:
        assert r["batched_views_s"] > 0 and r["per_sample_views_s"] > 0
        assert r["speedup"] == r["batched_views_s"] / r["per_sample_views_s"]


def test_bench_train_cli_writes_json(tiny_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    result = CliRunner().invoke(app, ["bench", "train", str(tiny_yaml), "--steps", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["steps_s"] > 0 and row["peak_mem_MiB"] > 0 and row["batch"] == 16
    assert bench_train([tiny_yaml], 4, 1, torch.device("cpu"))[0]["batch"] == 4
