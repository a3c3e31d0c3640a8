"""CaSSLe-style distillation head for streaming seq-JEPA (`stream.distill > 0`, lab.train.stream).

A predictor g maps the current encoder's features of the context views onto the frozen encoder of
the previous task, through the JEPA's 1 − cos loss: L_distill = distill · (1 − cos(g(z), sg(z_prev))).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lab.losses.jepa import cosine_loss


class Distiller(nn.Module):
    """CaSSLe through the JEPA loss: g(z) predicts the previous task's frozen encoder output.
    `previous` is None during the first task (nothing to distil from)."""

    def __init__(self, dim: int, hidden: int, weight: float) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.weight, self.previous = weight, None

    def snapshot(self, encoder: nn.Module) -> None:
        """Freeze a copy of `encoder` as the previous task's (called at each task boundary)."""
        self.previous = copy.deepcopy(encoder).requires_grad_(False)

    def __call__(self, out, seq) -> tuple[torch.Tensor, dict[str, float]]:
        """out.z: (B, M, D) the context views' features; seq.views: (B, V, 3, H, W) → (weighted loss, logs)."""
        if self.previous is None:
            return out.pred.new_zeros(()), {}
        m = out.z.shape[1]
        with torch.no_grad():
            z_prev = self.previous(seq.views[:, :m].flatten(0, 1))
        loss = cosine_loss(self.head(out.z.flatten(0, 1)), z_prev)
        return self.weight * loss, {"distill/loss": loss.item()}
