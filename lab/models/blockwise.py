"""Local (blockwise) seq-JEPA's modules (Siddiqui et al., "Blockwise Self-Supervised Learning at Scale",
TMLR 2024; the local seq-JEPA recipe of the reference, §6.3); the training glue is lab.train.local.

- `BlockwiseEncoder` wraps a staged encoder and groups its stages into blocks (`local.blocks`,
  stages per block; default one block per stage): the input of every block after the first is
  detached, so no gradient crosses a block boundary, and the pooled output of every block is kept
  (`pooled`) for the local losses. Its final output is the usual z, so the aggregator, predictor
  and the seq-JEPA loss train the top block exactly as end to end.
- `LocalObjective` holds a light predictor per lower block b: [h_b(x_M); a_M] → ĥ_b(x_{M+1}), the
  target being the EMA target's own block b on x_{M+1} (optionally centred by its batch mean), plus an
  anti-collapse term on h_b (`lab.losses.local`). Under data parallel the batch mean and the
  anti-collapse term are over the global batch (every rank's rows, lab.losses.gather).
- `stage_features` gives the pooled features of every stage of any staged encoder, for the
  per-stage probes of blockwise and end-to-end runs alike (lab.eval.stages).
"""

from __future__ import annotations

import torch
from torch import nn

from lab.losses.gather import gather_rows
from lab.losses.local import local_stage_loss
from lab.models.encoders import StagedEncoder


def stage_features(encoder: StagedEncoder, x: torch.Tensor, detach_before: frozenset[int] = frozenset()
                   ) -> list[torch.Tensor]:
    """Pooled output of every stage: x (B, 3, H, W) → [(B, C_s)] for s = 1..S; the input of each
    stage in `detach_before` is detached (no gradient flows below it)."""
    pooled, h = [], x
    for i, stage in enumerate(encoder.stages):
        h = stage(h.detach() if i in detach_before else h)
        pooled.append(encoder.pool(h))
    return pooled


class BlockwiseEncoder(nn.Module):
    """A staged encoder trained block by block: (B, 3, H, W) → (B, D) as the wrapped encoder, with
    stop-gradient between blocks. `blocks`: stages per block, bottom to top (default one block per
    stage); `block_dims[b]` is block b's output width; `pooled` holds the last call's per-block
    features [(B, block_dims[b])]."""

    def __init__(self, encoder: StagedEncoder, blocks: list[int] | None = None) -> None:
        super().__init__()
        if not isinstance(encoder, StagedEncoder):
            raise ValueError(f"local learning needs an encoder with stages; {type(encoder).__name__} has none")
        blocks = blocks or [1] * len(encoder.stages)
        if sum(blocks) != len(encoder.stages) or min(blocks) < 1:
            raise ValueError(f"blocks {blocks} must split the encoder's {len(encoder.stages)} stages into "
                             "blocks of at least one stage")
        self.inner = encoder
        self.out_dim, self.stage_dims = encoder.out_dim, encoder.stage_dims
        ends = torch.tensor(blocks).cumsum(0).tolist()  # one past each block's last stage
        self.block_last = [e - 1 for e in ends]
        self.block_dims = [encoder.stage_dims[i] for i in self.block_last]
        self.detach_before = frozenset(ends[:-1])
        self.pooled: list[torch.Tensor] = []

    @property
    def stages(self) -> nn.ModuleList:
        return self.inner.stages

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return self.inner.pool(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_stage = stage_features(self.inner, x, self.detach_before)
        self.pooled = [per_stage[i] for i in self.block_last]
        return self.pooled[-1]


def _light_predictor(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear → LayerNorm → GELU → Linear: no batch statistics, cheap next to the stage it trains."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out_dim))


class LocalObjective(nn.Module):
    """Light predictors and local losses of the blocks below the top one (the top block trains
    through the aggregator and predictor on the seq-JEPA loss). block_dims: every block's output
    width, the top one included."""

    def __init__(self, block_dims: list[int], action_dim: int, hidden: int, anti_collapse: str, weight: float,
                 eps_sq: float, center_target: bool = False) -> None:
        super().__init__()
        self.heads = nn.ModuleList(_light_predictor(c + action_dim, hidden, c) for c in block_dims[:-1])
        self.anti_collapse, self.weight, self.eps_sq = anti_collapse, weight, eps_sq
        self.center_target = center_target

    def forward(self, online: list[torch.Tensor], target: list[torch.Tensor], action: torch.Tensor,
                num_context: int) -> tuple[torch.Tensor, dict[str, float]]:
        """online: per block (B·M, C_b) features of the context views (view-major within a sample);
        target: per block (B, C_b) EMA features of x_{M+1}; action: (B, d_a) a_M: x_M → x_{M+1}.
        Returns the summed local loss and each block's terms."""
        total, metrics = action.new_zeros(()), {}
        for b, head in enumerate(self.heads):
            feats = online[b].unflatten(0, (-1, num_context))  # (B, M, C_b)
            pred = head(torch.cat([feats[:, -1], action], dim=-1))
            # pooled ReLU features share a large mean direction, which alone makes 1 − cos small;
            # centred, the target is what sets one sample apart, and a collapsed block scores worst
            goal = target[b] - gather_rows(target[b]).mean(0) if self.center_target else target[b]
            loss, terms = local_stage_loss(pred, goal, online[b], self.anti_collapse, self.weight, self.eps_sq)
            total = total + loss
            metrics |= {f"local/block{b}_{k}": v for k, v in terms.items()}
        return total, metrics
