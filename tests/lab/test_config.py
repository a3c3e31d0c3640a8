from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.config import ConfigError, load_config, parse_config
from tests.lab.conftest import tiny_config


def test_defaults_are_the_paper_baseline() -> None:
    cfg = parse_config({"name": "x"})
    assert (cfg.model.encoder, cfg.model.action_dim, cfg.model.agg_layers, cfg.model.agg_heads) == ("resnet18_cifar", 128, 3, 4)
    assert (cfg.model.agg_dropout, cfg.model.pred_hidden, cfg.model.act_cond) == (0.1, 1024, True)
    assert (cfg.optim.style, cfg.optim.lr, cfg.optim.weight_decay) == ("paper", 4e-4, 1e-3)
    assert (cfg.objective.ema_base, cfg.objective.ema_final, cfg.objective.loss) == (0.996, 1.0, "cosine")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"name": "x", "model": {"encodr": "convnet"}}, "unknown key 'encodr' in section 'model'"),
        ({"name": "x", "data": {"views": {"knd": "rotation"}}}, "unknown key 'knd' in section 'data.views'"),
        ({"name": "x", "trian": {}}, "unknown key 'trian' in section 'top level'"),
        ({"name": "x", "model": {"encoder": "vit"}}, "model.encoder: unknown encoder 'vit'"),
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
    with pytest.raises(ConfigError, match="unknown key 'epoch' in section 'train'"):
        load_config(path, ["train.epoch=7"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, ["train.epochs"])


def test_digest_ignores_logging_and_tracks_training_keys() -> None:
    a = parse_config({"name": "x"})
    b = parse_config({"name": "x", "logging": {"wandb": False}})
    c = parse_config({"name": "x", "optim": {"lr": 1e-3}})
    assert a.digest() == b.digest() != c.digest()
