"""seq-JEPA assembled from its parts (reference §1.1):

    z_i = f(x_i)                              i = 1..M   context views, online encoder
    e_i = E(a_i)                              a_i: x_i → x_{i+1}, i = 1..M
    u_i = [z_i; e_i] (i < M),  u_M = [z_M; 0]  the last context token's action slot is zero
    z_AGG = g([AGG], u_1..u_M)
    ẑ_{M+1} = h([z_AGG; e_M])                 e_M: the action into the target view
With `act_cond=False` tokens are z_i alone and the predictor sees z_AGG alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lab.config import ModelConfig
from lab.models.registry import REGISTRIES


@dataclass
class Forward:
    pred: torch.Tensor  # (B, D) predicted target embedding ẑ_{M+1}
    z: torch.Tensor  # (B, M, D) encoder outputs of the context views
    z_agg: torch.Tensor  # (B, D_tok) aggregate


class SeqJEPA(nn.Module):
    def __init__(self, encoder: nn.Module, action_embed: nn.Module | None, aggregator: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.encoder, self.action_embed, self.aggregator, self.predictor = encoder, action_embed, aggregator, predictor

    @property
    def act_cond(self) -> bool:
        return self.action_embed is not None

    def encode(self, views: torch.Tensor) -> torch.Tensor:
        """(B, V, 3, H, W) → (B, V, D), one encoder call for all views."""
        return self.encoder(views.flatten(0, 1)).unflatten(0, views.shape[:2])

    def aggregate(self, z: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        """z: (B, M, D) context features; e: (B, ≥M−1, d_e) action embeddings (the first M−1 are used).

        Returns z_AGG (B, D_tok); token M gets a zero action slot.
        """
        if e is None:
            return self.aggregator(z)
        slots = torch.cat([e[:, : z.shape[1] - 1], e.new_zeros(e.shape[0], 1, e.shape[2])], dim=1)
        return self.aggregator(torch.cat([z, slots], dim=-1))

    def embed_actions(self, actions: torch.Tensor) -> torch.Tensor | None:
        """(B, K, d_a) → (B, K, d_e), or None without action conditioning."""
        return self.action_embed(actions) if self.act_cond else None

    def forward(self, context: torch.Tensor, actions: torch.Tensor) -> Forward:
        """context: (B, M, 3, H, W) views x_1..x_M; actions: (B, M, d_a), actions[:, i] = a_{i+1}: x_{i+1} → x_{i+2}."""
        z = self.encode(context)
        e = self.embed_actions(actions)
        z_agg = self.aggregate(z, e)
        pred_in = z_agg if e is None else torch.cat([z_agg, e[:, -1]], dim=-1)
        return Forward(pred=self.predictor(pred_in), z=z, z_agg=z_agg)


def build_seqjepa(cfg: ModelConfig, action_in_dim: int) -> SeqJEPA:
    """Assemble from the registries: encoder, action embedding (if act_cond), aggregator, predictor."""
    encoder = REGISTRIES["encoder"][cfg.encoder](cfg)
    action_embed = REGISTRIES["action_embed"][cfg.action_embed](cfg, action_in_dim) if cfg.act_cond else None
    d_e = action_embed.out_dim if action_embed is not None else 0
    aggregator = REGISTRIES["aggregator"][cfg.aggregator](cfg, encoder.out_dim + d_e)
    predictor = REGISTRIES["predictor"][cfg.predictor](cfg, aggregator.out_dim + d_e, encoder.out_dim)
    return SeqJEPA(encoder, action_embed, aggregator, predictor)
