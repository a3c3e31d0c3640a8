"""The seq-JEPA aggregator: a post-norm transformer encoder over the token sequence."""

from __future__ import annotations

import torch
from torch import nn


class TransformerAggregator(nn.Module):
    """`layers` × nn.TransformerEncoderLayer (post-norm, ReLU, FFN ffn_mult·dim, dropout) and a
    final LayerNorm. No positional embedding: order reaches the model only through the action slots.

    tokens: (B, T, dim) → (B, T, dim)
    """

    def __init__(self, dim: int, layers: int = 3, heads: int = 4, ffn_mult: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"aggregator width {dim} is not divisible by {heads} heads; change model.aggregator.heads")
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=ffn_mult * dim, dropout=dropout, batch_first=True, norm_first=False
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens)
