from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.config import ConfigError, load_config, parse_config
from tests.lab.conftest import tiny_config


def test_defaults_are_the_paper_baseline() -> None:
    cfg = parse_config({"name": "x"})
    m = cfg.model
    assert (m.encoder.kind, m.action_embed.dim, m.aggregator.kind, m.aggregator.layers, m.aggregator.heads) == (
        "resnet18_cifar", 128, "transformer", 3, 4)
    assert (m.aggregator.dropout, m.predictor.hidden, m.act_cond) == (0.1, 1024, True)
    assert (cfg.optim.style, cfg.optim.lr, cfg.optim.weight_decay) == ("paper", 4e-4, 1e-3)
    assert (cfg.objective.target.kind, cfg.objective.target.base, cfg.objective.target.final) == ("ema", 0.996, 1.0)
    assert (cfg.objective.loss.kind, cfg.objective.rate.weight, cfg.objective.symmetric) == ("cosine", 0.0, False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"name": "x", "model": {"encodr": "convnet"}}, "unknown key 'encodr' in section 'model'"),
        ({"name": "x", "data": {"views": {"knd": "rotation"}}}, "unknown key 'knd' in section 'data.views'"),
        ({"name": "x", "trian": {}}, "unknown key 'trian' in section 'top level'"),
        ({"name": "x", "model": {"encoder": "vit"}}, "model.encoder: unknown kind 'vit'"),
        ({"name": "x", "model": {"encoder": {"kind": "convnet", "widht": 8}}},
         "unknown key 'widht' in section 'model.encoder'; allowed keys: kind, width"),
        ({"name": "x", "model": {"aggregator": {"layers": 2}}}, "model.aggregator: needs a 'kind'"),
        ({"name": "x", "model": {"agg_layers": 2}}, "key 'agg_layers' in section 'model' has moved: use model.aggregator.layers"),
        ({"name": "x", "train": {"epochs": 0}}, "train.epochs"),
        ({"model": {}}, "missing required key 'name'"),
        ({"name": "x", "gates": ["eval.linacc_agg >> 1"]}, "gate #1"),
    ],
)
def test_bad_config_names_the_key(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_config(raw)


def test_overrides_parse_yaml_values_and_reject_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path)))
    cfg = load_config(path, ["train.epochs=7", "model.act_cond=false", "eval.m_val=[1,2]"])
    assert (cfg.train.epochs, cfg.model.act_cond, cfg.eval.m_val) == (7, False, [1, 2])
    # a part given by its kind alone takes field overrides, and another kind's fields are refused
    cfg = load_config(path, ["model.aggregator=transformer", "model.aggregator.layers=2", "model.encoder.width=6"])
    assert (cfg.model.aggregator.layers, cfg.model.encoder.width) == (2, 6)
    with pytest.raises(ConfigError, match="unknown key 'width' in section 'model.encoder'"):
        load_config(path, ["model.encoder.kind=resnet18"])
    with pytest.raises(ConfigError, match="unknown key 'epoch' in section 'train'"):
        load_config(path, ["train.epoch=7"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, ["train.epochs"])


def test_digest_ignores_logging_and_tracks_training_keys() -> None:
    a = parse_config({"name": "x"})
    b = parse_config({"name": "x", "logging": {"wandb": False}})
    c = parse_config({"name": "x", "optim": {"lr": 1e-3}})
    assert a.digest() == b.digest() != c.digest()
