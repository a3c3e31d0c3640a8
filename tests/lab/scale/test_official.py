"""The released code's protocol, each as a config switch (configs/seqjepa/official-*.yaml turns them all on)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from typer.testing import CliRunner

from lab.build import build_parts, build_seqjepa
from lab.cli import app
from lab.config import ConfigError, OptimConfig, parse_config
from lab.data.actions import consecutive_diff
from lab.data.embedded import make_shapes
from lab.data.views import AugmentViews, build_view_sampler
from lab.eval.fresh_probe import fresh_view_probe_accuracy
from lab.eval.features import Features, extract
from lab.evaluate import compute_metrics
from lab.losses.objective import objective
from lab.train.loop import train_step
from lab.train.optim import build_optimizer
from tests.lab.conftest import tiny_config


def _cfg(tmp_path: Path, **sections: dict):
    return parse_config(tiny_config(tmp_path / "runs", **sections))


def test_released_optimiser_is_adam_without_weight_decay(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    sampler = build_view_sampler(make_shapes("train", num=16, image_size=16), cfg.data.views, "cpu")
    model, _, probes = build_parts(cfg, sampler, torch.device("cpu"))
    released = build_optimizer(OptimConfig(style="released"), model, probes)
    paper = build_optimizer(OptimConfig(), model, probes)
    assert type(released) is torch.optim.Adam and all(g["weight_decay"] == 0 for g in released.param_groups)
    assert type(paper) is torch.optim.AdamW and paper.param_groups[0]["weight_decay"] == 1e-3


@pytest.mark.parametrize("across", [False, True])
def test_augment_actions_are_normalised_across_views_before_differences(across: bool, monkeypatch) -> None:
    params = torch.rand(4 * 3 + 4, 9) + 0.5  # context rows (4 samples × 3) then the 4 targets

    def fixed(self, x, mods):
        return x, params[: x.shape[0]] if mods is self.context else params[12:]

    monkeypatch.setattr(AugmentViews, "_run", fixed)
    cfg = parse_config({"name": "a", "data": {"views": {"kind": "augment", "normalize_across_views": across}}}).data.views
    seq = build_view_sampler(make_shapes("train", num=8, image_size=16), cfg, "cpu").sample(torch.arange(4), 4)
    absolute = torch.cat([params[:12].unflatten(0, (4, 3)), params[12:, None]], 1)  # (B, V, 9)
    want = consecutive_diff(F.normalize(absolute, p=2, dim=1) if across else absolute)
    torch.testing.assert_close(seq.actions, want)


def test_evaluation_sequences_normalise_actions_over_the_views_training_used(tmp_path: Path, monkeypatch) -> None:
    """Issue 22, finding 5: with normalize_across_views, a 9-view evaluation sequence was normalised over
    9 views where training (M_tr = 3) normalised over 4, shrinking its actions. The same drawn
    parameters for views 1..3 and the target must give the same actions a_1, a_2 in both."""
    b, m_tr, v_eval = 4, 3, 9
    context, target = torch.rand(b, v_eval - 1, 9) + 0.5, torch.rand(b, 9) + 0.5

    def fixed(self, x, mods):  # context rows are (sample, view) flattened; the first m views of each sample
        if mods is self.context:
            return x, context[:, : x.shape[0] // b].flatten(0, 1)
        return x, target

    monkeypatch.setattr(AugmentViews, "_run", fixed)
    cfg = _cfg(tmp_path, data={"seq_len": m_tr, "views": {"kind": "augment", "normalize_across_views": True}})
    from lab.build import build_sampler

    sampler = build_sampler(cfg, "train", torch.device("cpu"))
    idx = torch.arange(b)
    train_actions = sampler.sample(idx, m_tr + 1).actions  # (B, 3, 9)
    eval_actions = sampler.sample(idx, v_eval).actions  # (B, 8, 9)
    absolute = torch.cat([context[:, :m_tr], target[:, None]], 1)
    torch.testing.assert_close(train_actions, consecutive_diff(F.normalize(absolute, p=2, dim=1)))  # training: unchanged
    torch.testing.assert_close(eval_actions[:, : m_tr - 1], train_actions[:, : m_tr - 1])


def test_released_action_batchnorm_calls(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, model={"action_embed": {"kind": "linear_bn", "dim": 8, "calls": "released"}})
    model = build_seqjepa(cfg.model, 2).train()
    views, actions = torch.randn(6, 3, 3, 16, 16), torch.randn(6, 3, 2)
    out = model(views, actions)
    emb = model.action_embed
    with torch.no_grad():
        bn = lambda a: F.batch_norm(emb.proj(a.flatten(0, 1)), None, None, training=True).view(*a.shape[:2], -1)  # noqa: E731
        context = bn(torch.cat([actions[:, :2], torch.zeros(6, 1, 2)], 1))  # the zero last slot is in the statistics
        torch.testing.assert_close(out.e[:, :2], context[:, :2], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.e[:, 2:], bn(actions[:, 2:]), atol=1e-5, rtol=1e-5)  # its own call
        joint = build_seqjepa(cfg.model.model_copy(update={"action_embed": cfg.model.action_embed.model_copy(update={"calls": "joint"})}), 2)
        joint.load_state_dict(model.state_dict())
        assert not torch.allclose(joint.train()(views, actions).e, out.e)


@pytest.mark.parametrize(("calls", "updates"), [("joint", 1), ("released", 2)])
def test_one_training_step_updates_the_action_batchnorm_as_often_as_the_released_code(tmp_path: Path, calls, updates) -> None:
    cfg = _cfg(tmp_path, model={"action_embed": {"kind": "linear_bn", "dim": 8, "calls": calls}})
    sampler = build_view_sampler(make_shapes("train", num=16, image_size=16), cfg.data.views, "cpu")
    model, target, probes = build_parts(cfg, sampler, torch.device("cpu"))
    opt = build_optimizer(cfg.optim, model, probes)
    train_step(model, target, probes, opt, functools.partial(objective, cfg.objective), sampler.sample(torch.arange(8), 3), 0.99,
               torch.autocast("cpu", enabled=False))
    assert int(model.action_embed.norm.num_batches_tracked) == updates  # the leakage probe reuses the forward's embeddings


def _features(n: int, informative: str, seed: int) -> Features:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    signal = F.one_hot(labels, 4).float() * 3 + 0.3 * torch.randn(n, 4, generator=g)
    noise = lambda: torch.randn(n, 4, generator=g)  # noqa: E731
    action = torch.randn(n, 9, generator=g)
    z1 = torch.cat([signal if informative == "view1" else noise(), action[:, :4]], 1)
    z2 = torch.cat([noise(), action[:, 4:8]], 1)
    original = torch.cat([signal if informative == "original" else noise(), noise()], 1)
    pair = torch.stack([z1, z2], 1)  # (n, 2, 8): views 1 and 2, alone and as one-view z_AGG
    return Features(z=pair, agg={3: z1, 5: z1}, agg_single=pair, action=action, labels=labels, original=original)


def test_encoder_probe_on_the_original_image_and_per_factor_r2(tmp_path: Path) -> None:
    names = AugmentViews.action_names
    base = {"data": {"views": {"kind": "augment"}, "seq_len": 3}, "eval": {"equi_hidden": 16, "equi_epochs": 5}}
    for where, want_high in (("view1", False), ("original", True)):
        cfg = _cfg(tmp_path, data=base["data"], eval=base["eval"] | {"enc_probe_input": where, "r2_heads": "per_factor"})
        tr, te = _features(400, "original", 0), _features(200, "original", 1)
        out = compute_metrics(cfg, tr, te, names)
        assert (out["linacc_enc"] > 0.9) == want_high, (where, out["linacc_enc"])
    assert {"r2_equi_group@crop", "r2_equi_group@jitter", "r2_equi_group@blur"} <= set(out)
    with pytest.raises(ConfigError, match="per_factor"):
        parse_config_strict(tmp_path, eval={"r2_heads": "per_factor"})
    with pytest.raises(ConfigError, match="no original"):
        parse_config_strict(tmp_path, data={"name": "3diebench", "views": {"kind": "quat"}}, eval={"enc_probe_input": "original"})


def parse_config_strict(tmp_path: Path, **sections: dict):
    from lab.config import parse_config as parse

    return parse(tiny_config(tmp_path, **sections))


def test_extract_returns_the_encoder_on_un_augmented_images(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, data={"views": {"kind": "augment"}})
    sampler = build_view_sampler(make_shapes("train", num=16, image_size=16), cfg.data.views, "cpu")
    model, _, _ = build_parts(cfg, sampler, torch.device("cpu"))
    model.eval()
    feats = extract(model, sampler, [1, 2], 8, None, 0, originals=True)
    with torch.no_grad():
        torch.testing.assert_close(feats.original, model.encoder(sampler.originals(torch.arange(16))))


def test_fresh_view_probe_draws_new_features_every_epoch() -> None:
    calls = {"n": 0}
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        calls["n"] += 1
        return F.one_hot(labels, 3).float() + 0.3 * torch.randn(300, 3, generator=g), labels

    test_x, test_y = draw()
    acc = fresh_view_probe_accuracy(draw, test_x, test_y, 3, epochs=20, lr=1e-2, batch_size=64)
    assert calls["n"] == 1 + 20 and acc > 0.9  # chance is 1/3


def test_a_run_reports_m_val_5_and_the_fresh_probe(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path / "runs", eval={"fresh_view_probe": True, "fresh_epochs": 2})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert raw["eval"]["m_val"] == [1, 3] and "eval.linacc_agg@M5" in results  # M_val 5 always
    assert 0 <= results["eval.linacc_agg_fresh"] <= 1


@pytest.mark.parametrize("path", sorted(Path("configs/seqjepa").glob("*.yaml")), ids=lambda p: p.name)
def test_paper_and_official_configs_load(path: Path) -> None:
    from lab.config import load_config

    cfg = load_config(path)
    if path.name.startswith("official-"):
        assert cfg.optim.style == "released" and cfg.model.action_embed.calls == "released" and cfg.eval.fresh_view_probe
    if cfg.data.views.kind == "augment" and path.name.startswith("official-"):
        assert cfg.data.views.normalize_across_views and cfg.eval.enc_probe_input == "original"
        assert cfg.eval.r2_heads == "per_factor"
    if cfg.data.name == "3diebench":
        assert cfg.data.stream == "disk"
