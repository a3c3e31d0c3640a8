from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from typer.testing import CliRunner

from lab.bench import bench_train, bench_views
from lab.build import build_parts
from lab.data.views import build_view_sampler
from lab.bench_official import CifarStyleSequences, IEBenchStyleSequences
from lab.cli import app
from lab.data.disk.synthetic import write_tree
from lab.data.embedded import make_shapes
from tests.lab.conftest import tiny_config


def test_bench_views_compares_ours_with_the_official_style_and_per_sample_pipelines(tmp_path: Path) -> None:
    rows = bench_views(["rotation", "augment", "3diebench"], batch_size=8, num_views=2, per_sample=4, reps=1,
                       device=torch.device("cpu"), iebench_objects=2, scratch=tmp_path)
    assert [r["kind"] for r in rows] == ["rotation", "augment", "3diebench"]
    assert rows[0]["official_style_views_s"] is None and rows[0]["speedup_vs_official"] is None  # no official rotation views
    for r in rows[1:]:
        assert r["ours_batched_views_s"] > 0 and r["official_style_views_s"] > 0 and r["ours_per_sample_views_s"] > 0
        assert r["speedup_vs_official"] == r["ours_batched_views_s"] / r["official_style_views_s"]
    assert rows[2]["px"] == 128 and rows[2]["cache_renders"] > 0
    assert not list(tmp_path.iterdir())  # the synthetic tree and its cache are removed


def test_official_style_cifar_sample_has_the_released_shapes_and_parameters() -> None:
    ds = make_shapes("train", num=4, image_size=32)
    torch.manual_seed(0)
    views, params, label, original = CifarStyleSequences(ds.images, ds.labels, 4)[1]
    assert views.shape == (4, 3, 32, 32) and params.shape == (4, 9) and original.shape == (3, 32, 32)
    assert label == int(ds.labels[1])
    top, left, h, w = params[:, :4].T
    assert ((h > 0) & (w > 0) & (top + h <= 32) & (left + w <= 32)).all()
    assert (params[:3, 8] >= 0.1).all()  # context views always blur (p = 1), σ ∈ [0.1, 2]
    assert (params[:, 8] <= 2.0).all()


def test_official_style_3diebench_sample_reads_distinct_renders(tmp_path: Path) -> None:
    folder = write_tree(tmp_path, synsets=1, objects=1, renders=5, size=32)
    views, quats, relative, label = IEBenchStyleSequences([folder / "00000000" / "obj00000"], [3], 4, 16, renders=5)[0]
    assert views.shape == (4, 3, 16, 16) and quats.shape == (4, 4) and relative.shape == (3, 4) and label == 3
    assert torch.allclose(quats.norm(dim=1), torch.ones(4), atol=1e-5)


def test_bench_train_cli_writes_json(tiny_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    result = CliRunner().invoke(app, ["bench", "train", str(tiny_yaml), "--steps", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["steps_s"] > 0 and row["peak_mem_MiB"] > 0 and row["batch"] == 16
    assert row["official_style_steps_s"] is None  # rotation views: the released code has none
    assert bench_train([tiny_yaml], 4, 1, torch.device("cpu"))[0]["batch"] == 4


def test_bench_train_times_the_official_style_step_for_augment_configs(tmp_path: Path) -> None:
    path = tmp_path / "aug.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs", data={"views": {"kind": "augment"}})))
    row = bench_train([path], 4, 1, torch.device("cpu"))[0]
    assert row["official_style_steps_s"] > 0 and row["speedup_vs_official"] == row["steps_s"] / row["official_style_steps_s"]


def test_bench_stream_trains_a_3diebench_config_from_a_sparse_split(tmp_path: Path) -> None:
    from lab.bench import bench_stream

    raw = tiny_config(tmp_path / "runs", data={"name": "3diebench", "views": {"kind": "quat"}, "image_size": 32,
                                               "num_train": None, "num_test": None})
    raw["gates"] = []
    path = tmp_path / "ie.yaml"
    path.write_text(yaml.safe_dump(raw))
    row = bench_stream(path, synsets=2, objects=5, batch_size=4, steps=1, device=torch.device("cpu"), scratch=tmp_path)
    assert row["objects"] == 8 and row["renders"] == 400 and row["px"] == 32  # streamed from the sparse cache
    assert row["split_GiB"] == 400 * 3 * 32**2 / 2**30 and row["steps_s"] > 0


def test_gpu_settings_fall_back_to_plain_float32_on_cpu(tiny_yaml: Path) -> None:
    from lab.build import accelerate, autocast_for
    from lab.config import load_config

    cfg = load_config(tiny_yaml, ["train.compile=true", "train.channels_last=true"])
    sampler = build_view_sampler(make_shapes("train", num=16, image_size=16), cfg.data.views, "cpu")
    model, target, _ = build_parts(cfg, sampler, torch.device("cpu"))
    accelerate(cfg, model, target, torch.device("cpu"))
    conv = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous() and not hasattr(model.encoder, "_compiled_call_impl") or model.encoder._compiled_call_impl is None
    with autocast_for(torch.device("cpu"), bf16=True):
        assert model.encoder(torch.randn(2, 3, 16, 16)).dtype == torch.float32
