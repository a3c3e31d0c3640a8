"""Predictors h_ψ: [z_AGG; e_M] (B, D_in) → predicted target embedding (B, D_out)."""

from __future__ import annotations

from torch import nn


def mlp_predictor(in_dim: int, out_dim: int, hidden: int) -> nn.Sequential:
    """Linear(no bias) → BN → ReLU → Linear, as in the official code; hidden ≤ 0 gives Linear → BN(out)."""
    if hidden <= 0:
        return nn.Sequential(nn.Linear(in_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim))
    return nn.Sequential(
        nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
    )
