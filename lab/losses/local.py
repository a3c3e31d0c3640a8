"""Local (per-stage) losses for blockwise seq-JEPA: a JEPA prediction term and an anti-collapse term.

Each encoder stage s trains on its own loss, computed on pooled stage features only:

    L_s = (1 − cos(ĥ_s, sg(h̄_s)))  +  anti-collapse(h_s)

ĥ_s: the stage's light predictor's guess of the target view's pooled stage-s features h̄_s (from
the EMA target's stage s). Anti-collapse, on the context features h_s (n, C_s):
- `rate`:   −λ · R(h_s; ε²), the coding rate of the ℓ2-normalised features (lab.losses.coding_rate),
            maximised so the stage cannot map everything to one point;
- `varcov`: λ · (push + 10 · decorrelation), LPL's local surrogate (Halvagal & Zenke 2023):
            push = −mean_i log(Var_i + 1e-4) (variance per dimension, batch mean detached),
            decorrelation = Σ_{i≠j} Cov_ij² / (d² − d).
Both are statistics of the batch: under data parallel they are computed on every rank's features,
gathered (lab.losses.gather), so each rank's term is the one a single process computes on the whole
batch, and DistributedDataParallel's average of the gradients is that process's gradient.
"""

from __future__ import annotations

import torch

from lab.losses.coding_rate import coding_rate
from lab.losses.gather import gather_rows
from lab.losses.jepa import cosine_loss


def variance_covariance(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LPL's push and decorrelation terms of z (n, d), n ≥ 2 → (push, decorrelation) scalars."""
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"variance_covariance needs (n ≥ 2, d) features, got {tuple(z.shape)}")
    centred = z - z.mean(0).detach()
    var = centred.pow(2).mean(0)
    push = -torch.log(var + 1e-4).mean()
    d = z.shape[1]
    cov = centred.T @ centred / (z.shape[0] - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    decorrelation = off.pow(2).sum() / max(d * d - d, 1)
    return push, decorrelation


def local_stage_loss(pred: torch.Tensor, target: torch.Tensor, feats: torch.Tensor, anti_collapse: str,
                     weight: float, eps_sq: float) -> tuple[torch.Tensor, dict[str, float]]:
    """L_s for one stage. pred, target: (B, C) predicted and target pooled features; feats: (n, C)
    this rank's context features for the anti-collapse term (gathered over ranks under data parallel).
    Returns the loss and its terms."""
    jepa = cosine_loss(pred, target)
    feats = gather_rows(feats)
    if anti_collapse == "rate":
        rate = coding_rate(feats, eps_sq)
        return jepa - weight * rate, {"jepa": jepa.item(), "rate": rate.item()}
    if anti_collapse == "varcov":
        push, decorrelation = variance_covariance(feats)
        return jepa + weight * (push + 10 * decorrelation), {"jepa": jepa.item(), "push": push.item(),
                                                            "decorrelation": decorrelation.item()}
    raise ValueError(f"unknown anti-collapse term {anti_collapse!r}; choose rate or varcov")
