"""Online probes: small heads trained on detached features, in their own optimiser group.

They never send gradient into the model (their inputs are detached), so they only monitor it:
- linacc_agg: linear classifier on z_AGG (M_val = M_tr), the invariance monitor;
- r2_equi:    MLP on [z1; z2] → relative action a_1, the equivariance monitor;
- leak_linacc: linear classifier on z1 (class information in the encoder output);
- leak_r2:    MLP on [z_AGG(x1); z_AGG(x2)] (single-view aggregates) → a_1 (action
              information surviving aggregation); same head as r2_equi, so the two compare.
Metrics are measured on the batch before the probes step on it (progressive validation).
R² here is per batch, on batch-standardised targets: 1 − MSE per output, averaged over outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ProbeInputs:
    z_agg: torch.Tensor  # (B, D_tok)
    z1: torch.Tensor  # (B, D) encoder output of view 1
    z2: torch.Tensor  # (B, D) encoder output of view 2
    agg1: torch.Tensor  # (B, D_tok) z_AGG of the one-view sequence (x1)
    agg2: torch.Tensor  # (B, D_tok) z_AGG of the one-view sequence (x2)
    action: torch.Tensor  # (B, A) a_1: x1 → x2
    labels: torch.Tensor  # (B,)


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _standardise(y: torch.Tensor) -> torch.Tensor:
    return (y - y.mean(0)) / y.std(0, unbiased=False).clamp_min(1e-6)


class OnlineProbes(nn.Module):
    def __init__(self, enc_dim: int, agg_dim: int, num_classes: int, action_dim: int, hidden: int = 1024) -> None:
        super().__init__()
        self.agg_cls = nn.Linear(agg_dim, num_classes)
        self.enc_cls = nn.Linear(enc_dim, num_classes)
        self.equi = _mlp(2 * enc_dim, hidden, action_dim)
        self.leak = _mlp(2 * agg_dim, hidden, action_dim)

    def forward(self, x: ProbeInputs) -> tuple[torch.Tensor, dict[str, float]]:
        """Summed probe loss (scalar, for backward) and detached metrics."""
        feats = {k: v.detach().float() for k, v in vars(x).items() if k != "labels"}
        x = ProbeInputs(**feats, labels=x.labels)
        target = _standardise(x.action)
        agg_logits, enc_logits = self.agg_cls(x.z_agg), self.enc_cls(x.z1)
        equi_err = (self.equi(torch.cat([x.z1, x.z2], -1)) - target).pow(2).mean(0)  # (A,)
        leak_err = (self.leak(torch.cat([x.agg1, x.agg2], -1)) - target).pow(2).mean(0)
        loss = F.cross_entropy(agg_logits, x.labels) + F.cross_entropy(enc_logits, x.labels) + equi_err.mean() + leak_err.mean()
        metrics = {
            "probe/linacc_agg": (agg_logits.argmax(-1) == x.labels).float().mean().item(),
            "probe/leak_linacc": (enc_logits.argmax(-1) == x.labels).float().mean().item(),
            "probe/r2_equi": (1 - equi_err).mean().item(),
            "probe/leak_r2": (1 - leak_err).mean().item(),
        }
        return loss, metrics
