"""Local (blockwise) seq-JEPA's training glue: `local_loss`, the `extra` term of `train_step` that adds
every lower block's local loss (lab.models.blockwise: `BlockwiseEncoder`, `LocalObjective`) to the
seq-JEPA loss, so one optimiser step covers every local loss; the EMA target copies the wrapper, so
its blocks are the targets. Per-stage probes: lab.eval.stages.
"""

from __future__ import annotations

import torch
from torch import nn


def local_loss(model: nn.Module, target: nn.Module):
    """The `extra` term of `train_step` for a blockwise model: its blocks' local losses from the
    features the online and target encoders kept during the step's forward passes."""
    def extra(out, seq) -> tuple[torch.Tensor, dict[str, float]]:
        action = seq.actions[:, -1]  # a_M: x_M → x_{M+1}
        return model.local(model.encoder.pooled, target.encoder.pooled, action, out.z.shape[1])

    return extra
