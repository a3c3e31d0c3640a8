"""JEPA prediction losses: (B, D) prediction and target → scalar; the target is always detached."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − cos(pred, sg(target)), averaged over the batch. pred, target: (B, D) → scalar in [0, 2].

    The target is detached here, so callers cannot accidentally backpropagate into it.
    """
    return 1.0 - F.cosine_similarity(pred, target.detach(), dim=-1).mean()


def sharpened_loss(pred: torch.Tensor, target: torch.Tensor, student_temp: float = 0.1,
                   target_temp: float = 0.04) -> torch.Tensor:
    """Cross-entropy H(p_t, p_s) averaged over the batch, with the sharpened, centred target
    p_t = softmax((sg(target) − mean_batch(target)) / target_temp) and p_s = softmax(pred / student_temp)
    over the D feature dimensions. pred, target: (B, D) → scalar ≥ 0. Centring on the batch mean
    (DINO keeps a running centre; here the batch's, so the function stays pure) stops one dimension
    from winning every sample; target_temp < student_temp sharpens the target.
    """
    t = target.detach().float()
    p_t = F.softmax((t - t.mean(0, keepdim=True)) / target_temp, dim=-1)
    return -(p_t * F.log_softmax(pred.float() / student_temp, dim=-1)).sum(-1).mean()
