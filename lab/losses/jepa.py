"""JEPA prediction losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − cos(pred, sg(target)), averaged over the batch. pred, target: (B, D) → scalar in [0, 2].

    The target is detached here, so callers cannot accidentally backpropagate into it.
    """
    return 1.0 - F.cosine_similarity(pred, target.detach(), dim=-1).mean()
