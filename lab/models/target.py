"""Targets: what encodes x_{M+1} for the loss. `forward(x, online)` → (B, D) without gradient;
`update(online, τ)` after every optimiser step.

- `EMATarget` (the baseline): an EMA copy of the encoder.
- `StopGradTarget` (teacherless): the online encoder itself under stop-gradient.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMATarget(nn.Module):
    """A frozen deep copy of the online encoder, updated ξ ← τξ + (1−τ)θ on parameters only.

    BN buffers are not averaged (as in the official code) and the copy runs in train mode, so
    its BN uses batch statistics. (B, 3, H, W) → (B, D), no gradient.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder)
        self.encoder.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, online: nn.Module | None = None) -> torch.Tensor:
        return self.encoder(x)

    @torch.no_grad()
    def update(self, online: nn.Module, tau: float) -> None:
        for target, source in zip(self.encoder.parameters(), online.parameters(), strict=True):
            target.lerp_(source.detach(), 1.0 - tau)


def without_stat_updates(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) with BatchNorm still normalising by batch statistics (train mode) but updating
    copies of its buffers, so the running mean/var and counters stay as they were. (Restoring the
    originals in place afterwards is not an option: autograd saved them for the online pass.)"""
    state = {name: p for name, p in module.named_parameters()}
    state |= {name: b.clone() for name, b in module.named_buffers()}
    return torch.func.functional_call(module, state, (x,))


class StopGradTarget(nn.Module):
    """Teacherless target: sg(f_θ(x)) from the online encoder, no copy and no EMA. The online
    BatchNorm running statistics are left as they were (only the context views update them)."""

    @torch.no_grad()
    def forward(self, x: torch.Tensor, online: nn.Module) -> torch.Tensor:
        return without_stat_updates(online, x)

    def update(self, online: nn.Module, tau: float) -> None:
        """Nothing to update: the target is the online encoder."""
