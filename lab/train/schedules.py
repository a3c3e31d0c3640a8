"""Per-step learning-rate and per-epoch EMA schedules (pure functions of the step/epoch)."""

from __future__ import annotations

import math

from lab.config import OptimConfig


def ema_tau(epoch: int, epochs: int, base: float = 0.996, final: float = 1.0) -> float:
    """BYOL's cosine schedule, per epoch: τ = final − (final − base)·(cos(π·epoch/epochs) + 1)/2.

    τ(0) = base and τ(epochs) = final; seq-JEPA holds τ fixed within an epoch and applies it every step.
    """
    return final - (final - base) * (math.cos(math.pi * epoch / epochs) + 1) / 2


def learning_rate(step: int, total_steps: int, warmup_steps: int, cfg: OptimConfig) -> float:
    """LR at a step: linear warmup start_lr → lr, then
    - paper:    cosine from lr down to final_lr at the last step;
    - released: constant lr (the released code resets lr every epoch, overriding its cosine)."""
    if step < warmup_steps:
        return cfg.start_lr + (cfg.lr - cfg.start_lr) * step / warmup_steps
    if cfg.style == "released":
        return cfg.lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return cfg.final_lr + (cfg.lr - cfg.final_lr) * (1 + math.cos(math.pi * min(1.0, progress))) / 2
