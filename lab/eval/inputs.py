"""Validation and standardisation shared by the probes; bad input becomes a ValueError naming the argument."""

from __future__ import annotations

import numpy as np
import torch


def as_matrix(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """(N, D) float32 tensor on x's device; rejects other ranks, empty input and non-finite values."""
    t = torch.as_tensor(x)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) matrix, got shape {tuple(t.shape)}")
    t = t.detach().float()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return t


def as_labels(y: torch.Tensor | np.ndarray, n: int, name: str) -> torch.Tensor:
    """(N,) int64 class ids >= 0; n is the number of rows of the matching feature matrix."""
    t = torch.as_tensor(y).detach()
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must be (N,) with N={n} to match its features, got shape {tuple(t.shape)}")
    if t.is_floating_point() and not torch.equal(t, t.round()):
        raise ValueError(f"{name} must hold integer class ids, got non-integer floats")
    t = t.long()
    if (t < 0).any():
        raise ValueError(f"{name} must hold class ids >= 0, got min {int(t.min())}")
    return t


def check_same_width(train: torch.Tensor, test: torch.Tensor, what: str) -> None:
    """Train and test matrices must have the same number of columns."""
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test {what} differ in width: {train.shape[1]} vs {test.shape[1]}")


def column_stats(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column mean (D,) and std (D,) of train; constant columns get scale 1."""
    scale = train.std(0, unbiased=False)
    return train.mean(0), torch.where(scale > 1e-8, scale, torch.ones_like(scale))


def standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and scale both matrices with the train mean/std per column."""
    mean, scale = column_stats(train)
    return (train - mean) / scale, (test - mean) / scale
