"""The seq-JEPA aggregator: a post-norm transformer encoder over [AGG] + context tokens."""

from __future__ import annotations

import torch
from torch import nn


class TransformerAggregator(nn.Module):
    """`layers` × nn.TransformerEncoderLayer (post-norm, ReLU, FFN ffn_mult·dim, dropout) and a
    final LayerNorm; a zero-initialised [AGG] token is prepended and its output returned.
    No positional embedding: order reaches the model only through the action slots.

    tokens: (B, M, dim) → z_AGG: (B, dim)
    """

    def __init__(self, dim: int, layers: int = 3, heads: int = 4, ffn_mult: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"aggregator width {dim} is not divisible by {heads} heads; change model.agg_heads")
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=ffn_mult * dim, dropout=dropout, batch_first=True, norm_first=False
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.agg_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.agg_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.encoder(x)[:, 0]
