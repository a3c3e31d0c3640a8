"""Local (blockwise) seq-JEPA: every encoder stage learns from its own loss, with stop-gradient
between stages (Siddiqui et al., "Blockwise Self-Supervised Learning at Scale", TMLR 2024; the
local seq-JEPA recipe of the reference, §6.3).

- `BlockwiseEncoder` wraps a staged encoder: the input of every stage after the first is
  detached, so no gradient crosses a stage boundary, and the pooled output of every stage is
  kept (`pooled`) for the local losses. Its final output is the usual z, so the aggregator,
  predictor and the seq-JEPA loss train the top stage exactly as end to end.
- `LocalObjective` holds a light predictor per lower stage: [h_s(x_M); a_M] → ĥ_s(x_{M+1}), the
  target being the EMA target's own stage s on x_{M+1}, plus an anti-collapse term on h_s
  (`lab.losses.local`). Its loss is added to the seq-JEPA loss, so one optimiser step covers
  every local loss; the EMA target copies the wrapper, so its stages are the targets.
- `stage_features` gives the pooled features of every stage of any staged encoder, for the
  per-stage probes of blockwise and end-to-end runs alike.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.losses.local import local_stage_loss
from lab.models.encoders import StagedEncoder


def stage_features(encoder: StagedEncoder, x: torch.Tensor, detach_between: bool = False) -> list[torch.Tensor]:
    """Pooled output of every stage: x (B, 3, H, W) → [(B, C_s)] for s = 1..S."""
    pooled, h = [], x
    for i, stage in enumerate(encoder.stages):
        h = stage(h.detach() if detach_between and i > 0 else h)
        pooled.append(encoder.pool(h))
    return pooled


class BlockwiseEncoder(nn.Module):
    """A staged encoder trained stage by stage: (B, 3, H, W) → (B, D) as the wrapped encoder, with
    stop-gradient between stages; `pooled` holds the last call's per-stage features."""

    def __init__(self, encoder: StagedEncoder) -> None:
        super().__init__()
        if not isinstance(encoder, StagedEncoder):
            raise ValueError(f"local learning needs an encoder with stages; {type(encoder).__name__} has none")
        self.inner = encoder
        self.out_dim, self.stage_dims = encoder.out_dim, encoder.stage_dims
        self.pooled: list[torch.Tensor] = []

    @property
    def stages(self) -> nn.ModuleList:
        return self.inner.stages

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return self.inner.pool(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.pooled = stage_features(self.inner, x, detach_between=True)
        return self.pooled[-1]


def _light_predictor(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear → LayerNorm → GELU → Linear: no batch statistics, cheap next to the stage it trains."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out_dim))


class LocalObjective(nn.Module):
    """Light predictors and local losses of the stages below the top one (the top stage trains
    through the aggregator and predictor on the seq-JEPA loss)."""

    def __init__(self, stage_dims: list[int], action_dim: int, hidden: int, anti_collapse: str, weight: float,
                 eps_sq: float) -> None:
        super().__init__()
        self.heads = nn.ModuleList(_light_predictor(c + action_dim, hidden, c) for c in stage_dims[:-1])
        self.anti_collapse, self.weight, self.eps_sq = anti_collapse, weight, eps_sq

    def forward(self, online: list[torch.Tensor], target: list[torch.Tensor], action: torch.Tensor,
                num_context: int) -> tuple[torch.Tensor, dict[str, float]]:
        """online: per stage (B·M, C_s) features of the context views (view-major within a sample);
        target: per stage (B, C_s) EMA features of x_{M+1}; action: (B, d_a) a_M: x_M → x_{M+1}.
        Returns the summed local loss and each stage's terms."""
        total, metrics = action.new_zeros(()), {}
        for s, head in enumerate(self.heads):
            feats = online[s].unflatten(0, (-1, num_context))  # (B, M, C_s)
            pred = head(torch.cat([feats[:, -1], action], dim=-1))
            loss, terms = local_stage_loss(pred, target[s], online[s], self.anti_collapse, self.weight, self.eps_sq)
            total = total + loss
            metrics |= {f"local/stage{s}_{k}": v for k, v in terms.items()}
        return total, metrics


def local_loss(model: nn.Module, target: nn.Module):
    """The `extra` term of `train_step` for a blockwise model: its stages' local losses from the
    features the online and target encoders kept during the step's forward passes."""
    def extra(out, seq) -> tuple[torch.Tensor, dict[str, float]]:
        action = seq.actions[:, -1]  # a_M: x_M → x_{M+1}
        return model.local(model.encoder.pooled, target.encoder.pooled, action, out.z.shape[1])

    return extra
