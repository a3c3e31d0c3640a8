"""Targets: what encodes x_{M+1} for the loss. The baseline is an EMA copy of the encoder."""

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
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    @torch.no_grad()
    def update(self, online: nn.Module, tau: float) -> None:
        for target, source in zip(self.encoder.parameters(), online.parameters(), strict=True):
            target.lerp_(source.detach(), 1.0 - tau)
