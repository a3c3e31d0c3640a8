"""`lab stream`: a tiny class-incremental stream end to end, replay and distillation wired in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from lab.build import build_sampler
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
    assert res["provenance.git_sha"] and "provenance.git_tree" in res  # which code made it (lab.provenance)
    run = cfg.run_dir
    assert json.loads((run / "stream.json").read_text())["stream.acc_matrix"] == matrix
    assert (run / "plots" / "stream.png").is_file() and checkpoint_path(run).is_file()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    if replay == "minred":
        assert max(r.get("replayed", 0) for r in logged) == 4  # replay joins the steps once the buffer has samples
    with pytest.raises(ConfigError, match="already holds"):
        train_stream(cfg)


def test_iterations_take_several_steps_per_batch_and_still_see_each_sample_once(tmp_path: Path) -> None:
    cfg = parse_config(_stream_config(tmp_path, iterations=3, replay="reservoir"))  # logs every step
    res = train_stream(cfg)
    per_task = [sum(int(c) in classes for c in cfg_labels(cfg)) for classes in res["stream.task_classes"]]
    batches = sum(-(-n // 8) for n in per_task)
    assert res["stream.samples"] == 96 and res["stream.steps"] == 3 * batches and res["stream.iterations"] == 3
    logged = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in logged if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 3 * batches + 1))
    assert [r["seen"] for r in steps][:3] == [8, 8, 8]  # three steps on the first batch before the next arrives
    assert len(res["stream.acc_matrix"]) == 3  # evaluation stays per task


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
    with pytest.raises(ConfigError, match="task_tint has 1 entries for 2 tasks"):
        parse_config(_stream_config(tmp_path, task_tint=[[1, 0, 0]]))
    with pytest.raises(ConfigError, match="task_tint"):
        parse_config(_stream_config(tmp_path, task_tint=[[1, 0], [0, 1, 0]]))  # two gains, not three


def test_task_tint_reaches_the_stream_and_the_eval_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every split is tinted alike: the probes read the tasks in the colours the stream showed them."""
    import lab.train.stream as stream_mod

    samplers = []

    def spy(*args, **kwargs):
        samplers.append(build_sampler(*args, **kwargs))
        return samplers[-1]

    monkeypatch.setattr(stream_mod, "build_sampler", spy)
    cfg = parse_config(_stream_config(tmp_path, task_tint=[[1, 0, 0], [0, 0, 1]]))
    res = train_stream(cfg)
    assert len(res["stream.acc_matrix"]) == 3 and len(samplers) == 2
    for sampler in samplers:  # eval train and test splits
        for classes, dark in zip(res["stream.task_classes"], ([1, 2], [0, 1]), strict=True):
            rows = torch.isin(sampler.labels, torch.tensor(classes))
            assert rows.any() and sampler.images[rows][:, dark].max() == 0
