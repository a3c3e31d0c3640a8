from __future__ import annotations

import math

import pytest
import torch

from lab.build import build_seqjepa
from lab.config import ModelConfig, OptimConfig, parse_config
from lab.losses import cosine_loss
from lab.models.action_embed import LinearBNActionEmbed
from lab.models.aggregators.transformer import TransformerAggregator
from lab.models.encoders import ConvNet, ResNet18
from lab.models.predictors import mlp_predictor
from lab.models.target import EMATarget
from lab.train.schedules import ema_tau, learning_rate


@pytest.mark.parametrize(("encoder", "size", "dim"), [(ConvNet(8), 16, 64), (ResNet18(cifar_stem=True), 32, 512), (ResNet18(cifar_stem=False), 64, 512)])
def test_encoder_shapes(encoder: torch.nn.Module, size: int, dim: int) -> None:
    assert encoder(torch.randn(2, 3, size, size)).shape == (2, dim) and encoder.out_dim == dim


def test_resnet_blocks_start_as_identity() -> None:
    net = ResNet18()
    zero_bn = [b.body[-1].weight for b in net.modules() if b.__class__.__name__ == "BasicBlock"]
    assert len(zero_bn) == 8 and all(float(w.detach().abs().sum()) == 0 for w in zero_bn)


def test_action_embed_predictor_shapes() -> None:
    emb = LinearBNActionEmbed(9, 128)
    assert emb.proj.bias is None and not emb.norm.affine
    assert emb(torch.randn(4, 3, 9)).shape == (4, 3, 128)
    pred = mlp_predictor(640 + 128, 512, 1024)
    assert pred[0].bias is None and pred(torch.randn(4, 768)).shape == (4, 512)
    assert len(mlp_predictor(10, 5, 0)) == 2


def test_aggregator_is_post_norm_without_positions() -> None:
    agg = TransformerAggregator(64, layers=3, heads=4).eval()
    layer = agg.encoder.layers[0]
    assert not layer.norm_first and layer.dropout.p == 0.1 and layer.linear1.out_features == 256
    assert isinstance(agg.encoder.norm, torch.nn.LayerNorm) and len(agg.encoder.layers) == 3
    tokens = torch.randn(5, 4, 64)
    out = agg(tokens)
    assert out.shape == (5, 4, 64)
    # no positional embedding: permuting the tokens permutes the outputs
    order = [2, 0, 3, 1]
    torch.testing.assert_close(agg(tokens[:, order]), out[:, order], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not divisible"):
        TransformerAggregator(30, heads=4)


def test_agg_token_belongs_to_the_model() -> None:
    model = build_seqjepa(_small(), action_in_dim=2).eval()
    assert model.agg_token.shape == (1, 1, 64 + 16) and float(model.agg_token.detach().abs().sum()) == 0
    assert not any("agg_token" in name for name, _ in model.aggregator.named_parameters())
    z = torch.randn(3, 2, 64)
    e = torch.randn(3, 2, 16)
    tokens = torch.cat([z, torch.cat([e[:, :1], torch.zeros(3, 1, 16)], 1)], -1)
    expected = model.aggregator(torch.cat([torch.zeros(3, 1, 80), tokens], 1))[:, 0]
    torch.testing.assert_close(model.aggregate(z, e), expected)


def test_every_config_kind_has_a_builder() -> None:
    from typing import get_args

    import lab.build as build
    import lab.config as config

    for union, registry in ((config.EncoderConfig, build.ENCODERS), (config.AggregatorConfig, build.AGGREGATORS),
                            (config.PredictorConfig, build.PREDICTORS), (config.ActionEmbedConfig, build.ACTION_EMBEDS),
                            (config.TargetConfig, build.TARGETS)):
        members = get_args(get_args(union)[0]) or (get_args(union)[0],)
        kinds = {k for m in members for k in get_args(m.model_fields["kind"].annotation)}
        assert kinds == set(registry), (union, kinds, set(registry))


def _small(**model: object) -> ModelConfig:
    raw = {"encoder": {"kind": "convnet", "width": 8}, "action_embed": {"kind": "linear_bn", "dim": 16},
           "predictor": {"kind": "mlp", "hidden": 32}, **model}
    return parse_config({"name": "x", "model": raw}).model


def test_seqjepa_forward_and_action_slots() -> None:
    torch.manual_seed(0)
    model = build_seqjepa(_small(), action_in_dim=2).eval()
    views, actions = torch.randn(4, 3, 3, 16, 16), torch.randn(4, 3, 2)
    out = model(views, actions)
    assert out.pred.shape == (4, 64) and out.z.shape == (4, 3, 64) and out.z_agg.shape == (4, 64 + 16)
    # the last action goes to the predictor only; the last context token's slot is zero
    changed = actions.clone()
    changed[:, 2] += 5.0
    out2 = model(views, changed)
    torch.testing.assert_close(out2.z_agg, out.z_agg)
    assert not torch.allclose(out2.pred, out.pred)
    changed[:, 0] += 5.0  # a context action changes z_AGG
    assert not torch.allclose(model(views, changed).z_agg, out.z_agg)


def test_no_action_ablation_ignores_actions() -> None:
    model = build_seqjepa(_small(act_cond=False), action_in_dim=2).eval()
    views = torch.randn(2, 2, 3, 16, 16)
    a = model(views, torch.randn(2, 2, 2))
    b = model(views, torch.randn(2, 2, 2))
    assert model.action_embed is None and a.z_agg.shape == (2, 64)
    torch.testing.assert_close(a.pred, b.pred)


def test_ema_schedule_values() -> None:
    assert ema_tau(0, 100) == pytest.approx(0.996)
    assert ema_tau(50, 100) == pytest.approx(0.998)
    assert ema_tau(100, 100) == pytest.approx(1.0)
    assert ema_tau(25, 100) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)


def test_ema_target_update() -> None:
    online = torch.nn.Linear(3, 2)
    target = EMATarget(online)
    assert not any(p.requires_grad for p in target.parameters())
    before = target.encoder.weight.clone()
    with torch.no_grad():
        online.weight.add_(1.0)
    target.update(online, tau=0.9)
    torch.testing.assert_close(target.encoder.weight, 0.9 * before + 0.1 * online.weight)


def test_lr_schedules_paper_and_released() -> None:
    paper, released = OptimConfig(), OptimConfig(style="released")
    assert learning_rate(0, 100, 10, paper) == pytest.approx(1e-5)
    assert learning_rate(10, 100, 10, paper) == pytest.approx(4e-4)
    assert learning_rate(100, 100, 10, paper) == pytest.approx(1e-5)
    assert learning_rate(55, 100, 10, paper) == pytest.approx((4e-4 + 1e-5) / 2)
    assert learning_rate(90, 100, 10, released) == pytest.approx(4e-4)


def test_cosine_loss_values_and_stop_gradient() -> None:
    x = torch.randn(4, 8, requires_grad=True)
    t = torch.randn(4, 8, requires_grad=True)
    assert cosine_loss(x, x.detach()).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_loss(x, -x.detach()).item() == pytest.approx(2.0, abs=1e-6)
    cosine_loss(x, t).backward()
    assert x.grad is not None and t.grad is None
