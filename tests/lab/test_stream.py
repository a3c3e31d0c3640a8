"""`lab stream`: a tiny class-incremental stream end to end, replay and distillation wired in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from lab.cli import app
from lab.config import ConfigError, parse_config
from lab.train.stream import Distiller, train_stream

from lab.data.embedded import make_shapes
from lab.train.checkpoint import checkpoint_path

from .conftest import tiny_config


def cfg_labels(cfg) -> list[int]:
    return make_shapes("train", num=cfg.data.num_train, image_size=cfg.data.image_size, seed=cfg.data.seed).labels.tolist()


def _stream_config(tmp_path: Path, **stream) -> dict:
    raw = tiny_config(tmp_path / "runs", data={"num_train": 96, "num_test": 64},
                      model={"encoder": {"kind": "convnet", "width": 4, "norm": "group"},
                             "action_embed": {"kind": "linear_ln", "dim": 8},
                             "predictor": {"kind": "mlp", "hidden": 16, "norm": "layer"}},
                      eval={"num_train": 96, "num_test": 64, "probe_max_iter": 20, "batch_size": 32})
    raw["stream"] = {"tasks": 2, "batch_size": 8, "buffer_size": 16, "replay_batch": 4, "evals_per_task": 1,
                     "warmup_steps": 2, **stream}
    return raw


@pytest.mark.parametrize("replay", ["none", "minred"])
def test_stream_runs_once_over_the_data_and_reports_the_task_matrix(tmp_path: Path, replay: str) -> None:
    cfg = parse_config(_stream_config(tmp_path, replay=replay, drift={"scale": [[0.7, 0.9], [1.1, 1.3]]}))
    res = train_stream(cfg)
    matrix = res["stream.acc_matrix"]
    assert len(matrix) == 3 and all(len(row) == 2 for row in matrix)  # untrained + after each of 2 tasks
    assert all(0 <= v <= 1 for row in matrix for v in row)
    assert res["stream.samples"] == 96  # every sample exactly once
    per_task = [sum(int(c) in classes for c in cfg_labels(cfg)) for classes in res["stream.task_classes"]]
    assert res["stream.steps"] == sum(-(-n // 8) for n in per_task)  # batches of 8, a task's last one short
    assert res["init.avg_acc"] == pytest.approx(sum(matrix[0]) / 2)
    assert res["gain.avg_acc"] == pytest.approx(res["eval.avg_acc"] - res["init.avg_acc"])
    assert "eval.forgetting@task0" in res and res["stream.replay"] == replay
    run = cfg.run_dir
    assert json.loads((run / "stream.json").read_text())["stream.acc_matrix"] == matrix
    assert (run / "plots" / "stream.png").is_file() and checkpoint_path(run).is_file()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    if replay == "minred":
        assert max(r.get("replayed", 0) for r in logged) == 4  # replay joins the steps once the buffer has samples
    with pytest.raises(ConfigError, match="already holds"):
        train_stream(cfg)


def test_distillation_starts_after_the_first_task() -> None:
    torch.manual_seed(0)
    encoder = torch.nn.Linear(12, 6)
    distiller = Distiller(6, 16, weight=0.5)

    class Out:
        z = torch.randn(4, 2, 6, requires_grad=True)
        pred = torch.randn(4, 6)

    class Seq:
        views = torch.randn(4, 3, 12)

    loss, metrics = distiller(Out, Seq)
    assert float(loss) == 0 and metrics == {}
    distiller.snapshot(encoder)
    loss, metrics = distiller(Out, Seq)
    assert float(loss.detach()) > 0 and 0 <= metrics["distill/loss"] <= 2
    loss.backward()
    assert Out.z.grad is not None and distiller.head[0].weight.grad is not None
    assert all(not p.requires_grad for p in distiller.previous.parameters())  # the previous model is frozen


def test_cli_stream_and_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_stream_config(tmp_path, replay="reservoir", distill=0.5)))
    result = CliRunner().invoke(app, ["stream", str(path)])
    assert result.exit_code == 0, result.output
    assert "gain.avg_acc" in result.output
    result = CliRunner().invoke(app, ["stream", str(path), "--set", "stream.tasks=9", "--overwrite"])
    assert result.exit_code == 2 and "stream.tasks" in result.output
    no_stream = tmp_path / "n.yaml"
    no_stream.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs")))
    result = CliRunner().invoke(app, ["stream", str(no_stream)])
    assert result.exit_code == 2 and "stream:" in result.output
    bad = _stream_config(tmp_path, drift={"hue": [0, 1]})
    with pytest.raises(ConfigError, match="drift of 'hue'"):
        parse_config(bad)
