"""Shared fixtures for the seq-JEPA lab tests: a tiny, fast run config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """W&B offline and silent; one torch thread (restored after), fastest on a shared CPU."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(runs_dir: Path, **sections: dict) -> dict:
    """A config dict small enough to train and evaluate in a few seconds on one CPU thread."""
    raw = {
        "name": "tiny",
        "data": {"name": "shapes", "seq_len": 2, "image_size": 16, "num_train": 64, "num_test": 32},
        "model": {"encoder": {"kind": "convnet", "width": 4}, "action_embed": {"kind": "linear_bn", "dim": 8},
                  "predictor": {"kind": "mlp", "hidden": 16}},
        "optim": {"warmup_epochs": 1},
        "train": {"epochs": 2, "batch_size": 16, "steps_per_epoch": 1, "log_every": 1, "probe_hidden": 16},
        "eval": {"m_val": [1, 3], "equi_hidden": 16, "equi_epochs": 2, "probe_max_iter": 20, "batch_size": 32},
        "gates": ["eval.chance == 0.125"],
        "logging": {"wandb": False, "progress": False, "runs_dir": str(runs_dir)},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return raw


@pytest.fixture
def tiny_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs")))
    return path
