"""The training objective assembled from its terms (prediction loss, coding rate), each returned on its own.

    loss = L_pred(ẑ_{M+1}, sg(z̄_{M+1})) − λ·(R̃(z) and/or R̃(z_AGG))

R̃ is the coding rate divided by its largest value for the batch's shape (n rows, d dimensions;
`max_coding_rate`), computed per context view over the batch and averaged over the M views; for
z_AGG over the batch's aggregates. Under data parallel the rate is a statistic of the global
batch: each rank's rows are gathered (n = world · B) before it is computed (lab.losses.gather).
"""

from __future__ import annotations

import torch

from lab.config import ObjectiveConfig
from lab.losses.coding_rate import coding_rate, max_coding_rate
from lab.losses.gather import gather_rows
from lab.losses.jepa import cosine_loss, sharpened_loss


def prediction_loss(cfg: ObjectiveConfig, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The configured prediction loss. pred, target: (B, D) → scalar."""
    if cfg.loss.kind == "sharpened":
        return sharpened_loss(pred, target, cfg.loss.student_temp, cfg.loss.target_temp)
    return cosine_loss(pred, target)


def normalised_rate(z: torch.Tensor, eps_sq: float) -> torch.Tensor:
    """R̃ of a (B, D) batch or the view-average of a (B, M, D) one, over every rank's rows; in (0, 1]."""
    z = gather_rows(z)
    views = z.unbind(1) if z.ndim == 3 else (z,)
    return torch.stack([coding_rate(v, eps_sq) for v in views]).mean() / max_coding_rate(z.shape[0], z.shape[-1], eps_sq)


def objective(cfg: ObjectiveConfig, pred: torch.Tensor, target: torch.Tensor, z: torch.Tensor, z_agg: torch.Tensor,
              rate_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total loss, {term: value}) for pred/target (B, D), z (B, M, D), z_AGG (B, D_tok).

    Terms: "pred" always; "rate_z" / "rate_agg" (R̃, to be maximised) when the rate is on with λ = rate_weight > 0.
    """
    terms = {"pred": prediction_loss(cfg, pred, target)}
    total = terms["pred"]
    if cfg.rate.weight > 0:
        if cfg.rate.features in ("z", "both"):
            terms["rate_z"] = normalised_rate(z, cfg.rate.eps_sq)
            total = total - rate_weight * terms["rate_z"]
        if cfg.rate.features in ("z_agg", "both"):
            terms["rate_agg"] = normalised_rate(z_agg, cfg.rate.eps_sq)
            total = total - rate_weight * terms["rate_agg"]
    return total, terms
