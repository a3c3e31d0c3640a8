"""seq-JEPA assembled from its parts (reference §1.1):

    z_i = f(x_i)                              i = 1..M   context views, online encoder
    e_i = E(a_i)                              a_i: x_i → x_{i+1}, i = 1..M
    u_i = [z_i; e_i] (i < M),  u_M = [z_M; 0]  the last context token's action slot is zero
    z_AGG = g([AGG], u_1..u_M)
    ẑ_{M+1} = h([z_AGG; e_M])                 e_M: the action into the target view
With `act_cond=False` tokens are z_i alone and the predictor sees z_AGG alone. The zero-initialised
[AGG] token is the model's, prepended to whatever aggregator mixes the tokens (`lab.build` assembles
the parts from the config).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Forward:
    pred: torch.Tensor  # (B, D) predicted target embedding ẑ_{M+1}
    z: torch.Tensor  # (B, M, D) encoder outputs of the context views
    z_agg: torch.Tensor  # (B, D_tok) aggregate
    e: torch.Tensor | None = None  # (B, M, d_e) action embeddings: M−1 context slots then the predictor's


class SeqJEPA(nn.Module):
    def __init__(self, encoder: nn.Module, action_embed: nn.Module | None, aggregator: nn.Module, predictor: nn.Module,
                 action_calls: str = "joint", released_last: str = "zero") -> None:
        """action_calls: 'joint' embeds the M actions in one call (one set of BatchNorm statistics);
        'released' as the released code: the context actions with a last slot (zero, or the last
        action when released_last='action', its 3DIEBench path) in one call, the predictor's in its own."""
        super().__init__()
        self.encoder, self.action_embed, self.aggregator, self.predictor = encoder, action_embed, aggregator, predictor
        self.action_calls, self.released_last = action_calls, released_last
        self.agg_token = nn.Parameter(torch.zeros(1, 1, aggregator.out_dim))

    @property
    def act_cond(self) -> bool:
        return self.action_embed is not None

    def encode(self, views: torch.Tensor) -> torch.Tensor:
        """(B, V, 3, H, W) → (B, V, D), one encoder call for all views."""
        return self.encoder(views.flatten(0, 1)).unflatten(0, views.shape[:2])

    def aggregate(self, z: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        """z: (B, M, D) context features; e: (B, ≥M−1, d_e) action embeddings (the first M−1 are used).

        Returns z_AGG (B, D_tok), the aggregator's output at the [AGG] position; token M gets a zero action slot.
        """
        return self.aggregator(self.tokens(z, e))[:, 0]

    def tokens(self, z: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        """The aggregator's input (B, 1 + M, D_tok): [AGG], then [z_i; e_i] with a zero slot on token M."""
        tokens = z
        if e is not None:
            slots = torch.cat([e[:, : z.shape[1] - 1], e.new_zeros(e.shape[0], 1, e.shape[2])], dim=1)
            tokens = torch.cat([z, slots], dim=-1)
        return torch.cat([self.agg_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

    def embed_actions(self, actions: torch.Tensor) -> torch.Tensor | None:
        """(B, K, d_a) → (B, K, d_e), or None without action conditioning."""
        return self.action_embed(actions) if self.act_cond else None

    def _embed_for_training(self, actions: torch.Tensor) -> torch.Tensor | None:
        """(B, M, d_a) → (B, M, d_e): slots a_1..a_{M−1} then the predictor's a_M (see action_calls)."""
        if not self.act_cond or self.action_calls == "joint":
            return self.embed_actions(actions)
        last = actions[:, -1:] if self.released_last == "action" else torch.zeros_like(actions[:, -1:])
        context = self.action_embed(torch.cat([actions[:, :-1], last], dim=1))  # BN statistics over B·M rows
        return torch.cat([context[:, :-1], self.action_embed(actions[:, -1:])], dim=1)

    def forward(self, context: torch.Tensor, actions: torch.Tensor) -> Forward:
        """context: (B, M, 3, H, W) views x_1..x_M; actions: (B, M, d_a), actions[:, i] = a_{i+1}: x_{i+1} → x_{i+2}."""
        z = self.encode(context)
        e = self._embed_for_training(actions)
        z_agg = self.aggregate(z, e)
        pred_in = z_agg if e is None else torch.cat([z_agg, e[:, -1]], dim=-1)
        return Forward(pred=self.predictor(pred_in), z=z, z_agg=z_agg, e=e)

    @torch.no_grad()
    def aggregator_layer_stats(self, context: torch.Tensor, actions: torch.Tensor) -> dict[str, float]:
        """layer<i>.<stat> of an aggregator that reports per-layer statistics (CRATE: ISTA sparsity, coding
        rate per head subspace) on context views (B, M, 3, H, W) with actions (B, M, d_a); {} for the others.
        Runs in eval mode (no BatchNorm statistics updated) and restores every module's mode as it found it."""
        if not hasattr(self.aggregator, "layer_stats"):
            return {}
        modes = [(m, m.training) for m in self.modules()]  # per module: a frozen encoder stays in eval mode
        self.eval()
        tokens = self.tokens(self.encode(context), self.embed_actions(actions)).float()
        stats = self.aggregator.layer_stats(tokens)
        for module, training in modes:
            module.training = training
        return {f"layer{i}.{k}": v for i, layer in enumerate(stats) for k, v in layer.items()}
