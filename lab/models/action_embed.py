"""Action embeddings: raw relative actions (…, d_a) → tokens' action slots (…, d_e)."""

from __future__ import annotations

import torch
from torch import nn


class LinearBNActionEmbed(nn.Module):
    """Linear(d_a → d_e, no bias) then BatchNorm1d(d_e, affine=False), as in the official code.

    The BN normalises each embedded dimension over every action in the batch, so its output
    depends on batch statistics (see gotcha 4 of the reference). (B, K, d_a) → (B, K, d_e).
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim, bias=False)
        self.norm = nn.BatchNorm1d(out_dim, affine=False)
        self.out_dim = out_dim

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(a.flatten(0, -2))).view(*a.shape[:-1], self.out_dim)


class LinearLNActionEmbed(nn.Module):
    """Linear(d_a → d_e, no bias) then LayerNorm(d_e, no affine): each action normalised on its
    own, so the embedding does not depend on the batch (tiny streaming batches). (B, K, d_a) → (B, K, d_e)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim, elementwise_affine=False)
        self.out_dim = out_dim

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(a))
