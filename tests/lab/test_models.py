from __future__ import annotations

import copy
import math

import pytest
import torch

from lab.build import build_seqjepa
from lab.config import ModelConfig, OptimConfig, parse_config
from lab.losses.jepa import cosine_loss
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


def test_stopgrad_target_is_the_online_encoder_and_leaves_bn_stats() -> None:
    from lab.models.target import StopGradTarget

    torch.manual_seed(0)
    online = ConvNet(4).train()
    before = {k: v.clone() for k, v in online.state_dict().items()}
    x = torch.randn(6, 3, 16, 16)
    out = StopGradTarget()(x, online)
    assert not out.requires_grad
    torch.testing.assert_close(out, copy.deepcopy(online)(x))  # batch statistics, same weights
    StopGradTarget()(x * 3 + 1, online)
    for key, value in online.state_dict().items():  # running mean/var and counters untouched
        torch.testing.assert_close(value, before[key], msg=key)
    online(x)  # an ordinary training pass does move them
    assert not torch.equal(online.state_dict()["stages.0.1.running_mean"], before["stages.0.1.running_mean"])


def test_sharpened_loss_prefers_the_sharpened_target() -> None:
    from lab.losses.jepa import sharpened_loss

    torch.manual_seed(0)
    target = torch.randn(8, 16)
    centred = target - target.mean(0)
    good = sharpened_loss(centred / 0.04 * 0.1, target)  # student logits that reproduce p_t
    bad = sharpened_loss(torch.randn(8, 16), target)
    assert good < bad
    pred = torch.randn(8, 16, requires_grad=True)
    t = torch.randn(8, 16, requires_grad=True)
    sharpened_loss(pred, t).backward()
    assert pred.grad is not None and t.grad is None


def test_objective_terms_and_rate_sign() -> None:
    from lab.config import ObjectiveConfig
    from lab.losses.objective import objective

    torch.manual_seed(0)
    pred, target, z, z_agg = torch.randn(16, 8), torch.randn(16, 8), torch.randn(16, 3, 8), torch.randn(16, 12)
    off, terms = objective(ObjectiveConfig(), pred, target, z, z_agg, rate_weight=0.0)
    assert set(terms) == {"pred"} and off.item() == pytest.approx(cosine_loss(pred, target).item())
    cfg = ObjectiveConfig(rate={"weight": 0.5, "features": "both"})
    total, terms = objective(cfg, pred, target, z, z_agg, rate_weight=0.5)
    assert set(terms) == {"pred", "rate_z", "rate_agg"} and 0 < terms["rate_z"].item() <= 1
    assert total.item() == pytest.approx((terms["pred"] - 0.5 * (terms["rate_z"] + terms["rate_agg"])).item())


@pytest.mark.parametrize("overcomplete", [None, 4])
def test_crate_aggregator_shapes_sparsity_and_stats(overcomplete: int | None) -> None:
    from lab.models.aggregators.crate import CrateAggregator

    torch.manual_seed(0)
    agg = CrateAggregator(32, layers=2, heads=4, overcomplete=overcomplete).eval()
    layer = agg.layers[0]
    assert layer.mssa.proj.weight.shape == (32, 32) and layer.mssa.proj.bias is None  # one U per head for q, k, v
    tokens = torch.randn(5, 4, 32)
    out = agg(tokens)
    assert out.shape == (5, 4, 32)
    order = [3, 1, 0, 2]  # no positions: permutation-equivariant
    torch.testing.assert_close(agg(tokens[:, order]), out[:, order], atol=1e-5, rtol=1e-5)
    stats = agg.layer_stats(tokens)
    assert len(stats) == 2 and all(0 <= s["sparsity"] <= 1 and s["rate_heads"] > 0 for s in stats)
    if overcomplete:
        assert layer.ista.dictionary.shape == (32, 128) and layer.ista.decoder.shape == (32, 128)
    else:
        h = layer.norm_ista(tokens)  # ISTA: non-negative, one step from H
        d = layer.ista.dictionary
        expected = torch.relu(h + 0.1 * (h - h @ d.T) @ d - 0.1 * 0.1)
        torch.testing.assert_close(layer.ista(h), expected)
        assert (layer.ista(h) >= 0).all()


@pytest.mark.parametrize(("overcomplete", "fan_in", "out_bias"), [(None, 64, True), (4, 256, False)])
def test_crate_dictionaries_and_output_bias_are_initialised_as_the_official_code(
        overcomplete: int | None, fan_in: int, out_bias: bool) -> None:
    """Issue 22, finding 9: the official CRATE / CRATE-α draw D from kaiming_uniform_ with a = 0,
    U(−√(6/fan_in), √(6/fan_in)); the lab used a = √5 (2.45× smaller). Vanilla CRATE's output
    projection has a bias, CRATE-α's has none."""
    from lab.models.aggregators.crate import CrateAggregator

    torch.manual_seed(0)
    layer = CrateAggregator(64, layers=1, heads=4, overcomplete=overcomplete).layers[0]
    bound = math.sqrt(6 / fan_in)
    for d in [layer.ista.dictionary] + ([layer.ista.decoder] if overcomplete else []):
        assert d.abs().max() <= bound and d.abs().max() > 0.98 * bound
        assert d.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # the uniform's std
    assert (layer.mssa.to_out.bias is not None) == out_bias


def test_crate_is_a_drop_in_aggregator() -> None:
    for kind in ("crate", "crate_alpha"):
        model = build_seqjepa(_small(aggregator={"kind": kind, "layers": 2}), action_in_dim=2).eval()
        out = model(torch.randn(3, 2, 3, 16, 16), torch.randn(3, 2, 2))
        assert out.z_agg.shape == (3, 64 + 16) and out.pred.shape == (3, 64)
