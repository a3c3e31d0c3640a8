"""Optimiser with separate parameter groups for the model (decayed / not) and the online probes."""

from __future__ import annotations

import torch
from torch import nn

from lab.config import OptimConfig


def build_optimizer(cfg: OptimConfig, model: nn.Module, probes: nn.Module) -> torch.optim.Optimizer:
    """paper: AdamW, weight decay on ≥2-D weights only (not biases, norms, [AGG] token).
    released: Adam without weight decay (main_transformed_views.py).
    Probes get their own group: lr = probe_lr, no weight decay, never scheduled.
    Groups are tagged `role` ("model" or "probe") so the loop schedules only the model's.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    wd = cfg.weight_decay if cfg.style == "paper" else 0.0
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": wd, "role": "model"},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "role": "model"},
        {"params": list(probes.parameters()), "weight_decay": 0.0, "lr": cfg.probe_lr, "role": "probe"},
    ]
    opt_cls = torch.optim.AdamW if cfg.style == "paper" else torch.optim.Adam
    return opt_cls(groups, lr=cfg.lr)
