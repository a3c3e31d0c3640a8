"""Local (blockwise) learning: stages, stop-gradient, local losses, one step over all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from lab.build import ENCODERS, build_parts
from lab.cli import app
from lab.config import ConfigError, ConvNetEncoderConfig, ResNetEncoderConfig, parse_config
from lab.data.embedded import make_shapes
from lab.data.views import build_view_sampler
from lab.losses.local import local_stage_loss, variance_covariance
from lab.models.encoders import ConvNet, ResNet18
from lab.models.blockwise import BlockwiseEncoder, LocalObjective, stage_features

from .conftest import tiny_config


@pytest.mark.parametrize("norm", ["batch", "group", "layer"])
def test_encoders_expose_stages_and_forward_is_unchanged(norm: str) -> None:
    torch.manual_seed(0)
    for net, size in ((ConvNet(4, norm=norm), 16), (ResNet18(norm=norm), 32)):
        net.eval()
        x = torch.randn(3, 3, size, size)
        feats = stage_features(net, x)
        assert [f.shape[1] for f in feats] == net.stage_dims and len(net.stages) == 4
        torch.testing.assert_close(feats[-1], net(x))
    assert isinstance(ConvNet(4, norm="group").stages[0][1], torch.nn.GroupNorm)


def test_blockwise_encoder_stops_gradient_between_stages() -> None:
    torch.manual_seed(0)
    net = BlockwiseEncoder(ConvNet(4))
    x = torch.randn(4, 3, 16, 16)
    net(x).sum().backward()  # the top output's gradient reaches the top stage only
    grads = [sum(p.grad.abs().sum() for p in stage.parameters() if p.grad is not None) if any(
        p.grad is not None for p in stage.parameters()) else 0.0 for stage in net.stages]
    assert grads[-1] > 0 and all(g == 0 for g in grads[:-1])
    net.zero_grad()
    net(x)
    net.pooled[1].sum().backward()  # a stage's own loss trains that stage and no other
    assert all(p.grad is None for p in net.stages[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.stages[1].parameters())
    # end to end, the same top output trains every stage
    e2e = ConvNet(4)
    e2e(x).sum().backward()
    assert all(any(p.grad is not None and p.grad.abs().sum() > 0 for p in s.parameters()) for s in e2e.stages)
    with pytest.raises(ValueError, match="stages"):
        BlockwiseEncoder(torch.nn.Linear(3, 3))


def _stage_has_grad(stage: torch.nn.Module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.parameters())


def test_blocks_of_stages_stop_gradient_only_between_blocks() -> None:
    torch.manual_seed(0)
    net = BlockwiseEncoder(ConvNet(4), blocks=[2, 2])
    x = torch.randn(4, 3, 16, 16)
    out = net(x)
    assert net.block_dims == [8, 32] and [p.shape[1] for p in net.pooled] == [8, 32]
    torch.testing.assert_close(net.pooled[0], stage_features(net.inner, x)[1])  # block 0 ends at stage 1
    out.sum().backward()  # the top block's output trains both of its stages, not the block below
    assert [_stage_has_grad(s) for s in net.stages] == [False, False, True, True]
    net.zero_grad()
    net(x)
    net.pooled[0].sum().backward()  # the lower block's own loss trains both of its stages
    assert [_stage_has_grad(s) for s in net.stages] == [True, True, False, False]
    for bad in ([2, 1], [0, 4]):
        with pytest.raises(ValueError, match="blocks"):
            BlockwiseEncoder(ConvNet(4), blocks=bad)


@pytest.mark.parametrize(("blocks", "message"), [([2, 1], "covers 3 stages"), ([4], "two or more blocks"),
                                                 ([3, 0, 1], "two or more blocks")])
def test_config_rejects_blocks_that_do_not_split_the_stages(tmp_path: Path, blocks: list[int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(tiny_config(tmp_path, objective={"local": {"enabled": True, "blocks": blocks}}))


def test_encoder_configs_know_their_stage_counts() -> None:
    for cfg in (ConvNetEncoderConfig(width=4), ResNetEncoderConfig(kind="resnet18_cifar"), ResNetEncoderConfig(kind="resnet18")):
        assert len(ENCODERS[cfg.kind](cfg).stages) == cfg.num_stages


def test_local_losses() -> None:
    torch.manual_seed(0)
    spread = torch.randn(64, 8)
    collapsed = torch.ones(64, 8) + 1e-3 * torch.randn(64, 8)
    push_s, dec_s = variance_covariance(spread)
    push_c, _ = variance_covariance(collapsed)
    assert push_c > push_s  # collapse is penalised
    correlated = torch.randn(64, 1).repeat(1, 8) + 0.1 * torch.randn(64, 8)
    assert variance_covariance(correlated)[1] > 10 * dec_s
    pred, target = torch.randn(16, 8), torch.randn(16, 8)
    loss, terms = local_stage_loss(pred, target, spread, "varcov", 1.0, 0.5)
    assert set(terms) == {"jepa", "push", "decorrelation"} and torch.isfinite(loss)
    loss_same, _ = local_stage_loss(target, target, spread, "varcov", 0.0, 0.5)
    assert float(loss_same) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="anti-collapse"):
        local_stage_loss(pred, target, spread, "nope", 1.0, 0.5)


def test_centred_target_makes_a_collapsed_block_score_worst() -> None:
    torch.manual_seed(0)
    online, action = [torch.randn(8 * 2, 4), torch.randn(8 * 2, 6)], torch.randn(8, 3)
    collapsed = [torch.ones(8, 4), torch.ones(8, 6)]  # every target view maps to the same point
    plain = LocalObjective([4, 6], 3, 8, "varcov", 0.0, 0.5)
    with torch.no_grad():
        plain.heads[0][-1].bias.fill_(1.0)
        plain.heads[0][-1].weight.zero_()  # the head predicts the constant exactly
    centred = LocalObjective([4, 6], 3, 8, "varcov", 0.0, 0.5, center_target=True)
    centred.load_state_dict(plain.state_dict())
    assert plain(online, collapsed, action, 2)[1]["local/block0_jepa"] == pytest.approx(0.0, abs=1e-6)
    assert centred(online, collapsed, action, 2)[1]["local/block0_jepa"] == pytest.approx(1.0)


@pytest.mark.parametrize(("blocks", "heads", "logged"), [(None, 3, {"local/block0_jepa", "local/block2_push"}),
                                                         ([2, 2], 1, {"local/block0_jepa", "local/block0_push"})])
def test_local_objective_is_part_of_the_model_and_one_step_trains_every_stage(
        tmp_path: Path, blocks: list[int] | None, heads: int, logged: set[str]) -> None:
    cfg = parse_config(tiny_config(tmp_path / "runs", objective={"local": {"enabled": True, "hidden": 8, "blocks": blocks}}))
    sampler = build_view_sampler(make_shapes("train", num=16, image_size=16), cfg.data.views, "cpu")
    model, target, probes = build_parts(cfg, sampler, torch.device("cpu"))
    assert isinstance(model.encoder, BlockwiseEncoder) and len(model.local.heads) == heads
    assert any(k.startswith("local.heads.0") for k in model.state_dict())  # saved and restored with the model
    import functools

    from lab.losses.objective import objective
    from lab.train.local import local_loss
    from lab.train.loop import train_step
    from lab.train.optim import build_optimizer

    opt = build_optimizer(cfg.optim, model, probes)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    seq = sampler.sample(torch.arange(16), 3)
    metrics = train_step(model, target, probes, opt, functools.partial(objective, cfg.objective), seq, 0.99,
                         torch.autocast("cpu", enabled=False), extra=local_loss(model, target))
    assert logged <= set(metrics) and not any(k.startswith(f"local/block{heads}") for k in metrics)
    changed = [not torch.equal(b, p) for b, p in zip(before, model.encoder.parameters(), strict=True)]
    stage_of = [i for i, s in enumerate(model.encoder.stages) for _ in s.parameters()]
    assert all(any(c for c, s in zip(changed, stage_of, strict=True) if s == k) for k in range(4))


def test_local_run_trains_and_reports_per_stage_probes(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path / "runs", objective={"local": {"enabled": True, "hidden": 8}},
                      eval={"stages": True, "num_train": 32, "num_test": 32, "equi_head": "linear"})
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    res = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    for s in range(4):
        for key in ("linacc", "r2_equi"):
            assert res[f"gain.stage{s}.{key}"] == pytest.approx(res[f"eval.stage{s}.{key}"] - res[f"init.stage{s}.{key}"])
    assert 0 <= res["eval.stage0.linacc"] <= 1
