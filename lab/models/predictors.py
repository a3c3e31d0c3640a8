"""Predictors h_ψ: [z_AGG; e_M] (B, D_in) → predicted target embedding (B, D_out)."""

from __future__ import annotations

from torch import nn


def mlp_predictor(in_dim: int, out_dim: int, hidden: int, norm: str = "batch") -> nn.Sequential:
    """Linear(no bias) → BN → ReLU → Linear, as in the official code; hidden ≤ 0 gives Linear → BN(out).
    norm="layer" puts LayerNorm where BN is (no batch statistics: tiny streaming batches)."""
    def make(dim: int) -> nn.Module:
        return nn.BatchNorm1d(dim) if norm == "batch" else nn.LayerNorm(dim)

    if hidden <= 0:
        return nn.Sequential(nn.Linear(in_dim, out_dim, bias=False), make(out_dim))
    return nn.Sequential(
        nn.Linear(in_dim, hidden, bias=False), make(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
    )
