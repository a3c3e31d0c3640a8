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
from lab.models.distiller import Distiller
from lab.train.stream import train_stream

from lab.data.embedded import make_shapes
from lab.rundir.checkpoint import checkpoint_path

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
    assert res["provenance.git_sha"] and "provenance.git_tree" in res  # which code made it (lab.rundir.provenance)
    run = cfg.run_dir
    assert json.loads((run / "stream.json").read_text())["stream.acc_matrix"] == matrix
    assert (run / "plots" / "stream.png").is_file() and checkpoint_path(run).is_file()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    if replay == "minred":
        assert all(r["replayed"] == r["step_samples"] for r in logged if "loss" in r)
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


def _bn_stream_config(tmp_path: Path, **stream) -> dict:
    """The tiny stream with BatchNorm in the encoder, action embedding and predictor (as stream.yaml)."""
    raw = _stream_config(tmp_path, **stream)
    raw["model"] = {"encoder": {"kind": "convnet", "width": 4, "norm": "batch"},
                    "action_embed": {"kind": "linear_bn", "dim": 8}, "predictor": {"kind": "mlp", "hidden": 16}}
    raw["eval"]["control_bn_sequences"] = 32
    raw["data"]["num_train"] = 112  # tasks of 59 and 53 samples: no batch of one, which BatchNorm cannot train on
    return raw


def _encoder_bn(model) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("replay", ["none", "fifo", "reservoir", "minred"])
def test_every_arm_trains_on_as_many_samples_per_step_as_arrive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                replay: str) -> None:
    """Issue 22, finding 3: replay arms trained on 32 + 32 samples per step against no replay's 32."""
    import lab.train.stream as stream_mod

    sizes, real = [], stream_mod.train_step
    monkeypatch.setattr(stream_mod, "train_step", lambda model, target, probes, opt, loss_fn, seq, *a:
                        sizes.append(seq.views.shape[0]) or real(model, target, probes, opt, loss_fn, seq, *a))
    cfg = parse_config(_stream_config(tmp_path, replay=replay, iterations=2))
    res = train_stream(cfg)
    per_task = [sum(int(c) in classes for c in cfg_labels(cfg)) for classes in res["stream.task_classes"]]
    arriving = [min(8, n - i) for n in per_task for i in range(0, n, 8) for _ in range(2)]
    assert sizes == arriving  # each step as many samples as the incoming batch, whatever the arm
    assert res["stream.trained_samples"] == 2 * 96
    logged = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    replayed = [r["replayed"] for r in logged if "loss" in r]
    if replay in ("fifo", "reservoir"):
        assert max(replayed) == 4 and replayed[:2] == [0, 0]  # replay_batch of the 8 once the buffer fills
    elif replay == "minred":
        assert replayed == [r["step_samples"] for r in logged if "loss" in r]  # the whole step from the buffer


def test_minred_draws_every_step_from_its_buffer_and_its_feature_pass_leaves_batchnorm_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22, finding 4: the lab trained on incoming + replayed samples and ran MinRed's feature
    pass in train mode, so only that arm's BatchNorm saw extra batches."""
    import lab.data.stream as data_stream
    import lab.train.stream as stream_mod
    from lab.data.replay import MinRedBuffer

    buffers, drawn = [], []

    class Spy(MinRedBuffer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            buffers.append(self)

    real_sample = data_stream.DeviceWindow.sample

    def sample(window, idx, num_views, views=None):
        drawn.append((idx.clone(), buffers[0].indices.clone() if buffers else None))
        return real_sample(window, idx, num_views, views)

    monkeypatch.setitem(stream_mod.BUFFERS, "minred", Spy)
    monkeypatch.setattr(data_stream.DeviceWindow, "sample", sample)
    tracked = {}
    for replay in ("none", "minred"):
        drawn.clear()
        cfg = parse_config(_bn_stream_config(tmp_path, replay=replay) | {"name": f"bn-{replay}"})
        train_stream(cfg)
        state = torch.load(checkpoint_path(cfg.run_dir), weights_only=False)["model"]
        tracked[replay] = {k: int(v) for k, v in state.items() if k.startswith("encoder") and k.endswith("num_batches_tracked")}
    assert tracked["minred"] == tracked["none"] and tracked["none"]  # one BN update per step in both arms
    assert drawn and all(held is not None and bool(torch.isin(idx, held).all()) for idx, held in drawn)


@pytest.mark.parametrize("eval_bn", ["reestimate", "running"])
def test_each_evaluation_reestimates_batchnorm_statistics_on_every_task_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eval_bn: str) -> None:
    """Issue 22, finding 3: the stream was probed through the training running statistics (the
    untrained row through BN's initial mean 0 / variance 1, the no-replay arm through the last task's)."""
    import lab.train.stream as stream_mod

    seen, real = [], stream_mod.extract

    def spy(net, *args, **kwargs):
        bn = _encoder_bn(net)[0]
        seen.append((net, bn.running_mean.clone(), bn.running_var.clone()))
        return real(net, *args, **kwargs)

    monkeypatch.setattr(stream_mod, "extract", spy)
    cfg = parse_config(_bn_stream_config(tmp_path, eval_bn=eval_bn))
    res = train_stream(cfg)
    assert res["stream.eval_bn"] == eval_bn
    first_mean, first_var = seen[0][1], seen[0][2]
    initial = bool((first_mean == 0).all() and (first_var == 1).all())
    assert initial == (eval_bn == "running")  # the untrained row: BN statistics measured, or the initial ones
    state = torch.load(checkpoint_path(cfg.run_dir), weights_only=False)["model"]
    trained = [v for k, v in state.items() if k.startswith("encoder") and k.endswith("running_mean")][0]
    if eval_bn == "reestimate":  # probed copies; the learner keeps its own statistics
        assert len({id(net) for net, _, _ in seen}) == len(seen) // 2  # a fresh copy per evaluation (train + test split)
        assert not torch.equal(seen[-1][1], trained)


def test_the_null_stream_has_the_same_samples_and_steps_without_the_class_shift(tmp_path: Path) -> None:
    from lab.data.stream import iid_order

    order = [torch.arange(0, 10), torch.arange(10, 16), torch.arange(16, 30)]
    iid = iid_order(order, seed=3)
    assert [o.numel() for o in iid] == [10, 6, 14]
    assert sorted(torch.cat(iid).tolist()) == list(range(30)) and not torch.equal(torch.cat(iid), torch.cat(order))
    assert max(o.max() for o in iid[:1]) >= 10  # the first segment holds samples of later tasks
    runs = {}
    for order_kind in ("tasks", "iid"):
        cfg = parse_config(_stream_config(tmp_path, order=order_kind) | {"name": f"order-{order_kind}"})
        runs[order_kind] = train_stream(cfg)
    assert runs["iid"]["stream.order"] == "iid" and runs["tasks"]["stream.order"] == "tasks"
    for key in ("stream.samples", "stream.steps", "stream.trained_samples"):
        assert runs["iid"][key] == runs["tasks"][key]
    assert len(runs["iid"]["stream.acc_matrix"]) == 3


def test_noise_evals_give_forgetting_its_probe_noise_floor(tmp_path: Path) -> None:
    cfg = parse_config(_stream_config(tmp_path, noise_evals=2))
    res = train_stream(cfg)
    assert res["noise.evals"] == 2 and len(res["noise.acc_matrix"]) == 2
    assert res["noise.acc_matrix"][0] != res["stream.acc_matrix"][-1]  # other probe seeds, other accuracies
    assert res["noise.acc_std"] > 0 and "noise.forgetting" in res


def test_replay_must_replace_part_of_the_step_not_add_to_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="replay_batch .* must be below batch_size"):
        parse_config(_stream_config(tmp_path, replay="reservoir", replay_batch=8))
    with pytest.raises(ConfigError, match="buffer_size .* at least batch_size"):
        parse_config(_stream_config(tmp_path, replay="minred", buffer_size=4))
