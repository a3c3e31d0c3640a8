"""Leakage probes: information sitting in the representation that should not carry it.

seq-JEPA splits roles: the encoder output z keeps the view's pose (equivariant) and the
aggregate z_AGG keeps identity (invariant). The leakage probes read the *other* representation:

- ``leakage_class_accuracy``: class from the encoder output z of single views
  (``eval.leak_linacc``) — the same linear probe as ``linear_probe_accuracy``.
- ``leakage_action_r2``: the relative action from pairs of aggregates [z_AGG,1; z_AGG,2]
  (``eval.leak_r2``) — the same regressor and R² variants as ``equivariance_r2``.

Lower is better for both, relative to the matching "right" probe (linacc_agg, r2_equi).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lab.eval.equivariance import equivariance_r2
from lab.eval.probes import linear_probe_accuracy

Array = torch.Tensor | np.ndarray


def leakage_class_accuracy(train_z: Array, train_y: Array, test_z: Array, test_y: Array, **probe: Any) -> float:
    """Class accuracy from encoder outputs. train_z: (N, D) z of single views, train_y: (N,) labels."""
    return linear_probe_accuracy(train_z, train_y, test_z, test_y, **probe)


def leakage_action_r2(train_agg_pairs: Array, train_a: Array, test_agg_pairs: Array, test_a: Array,
                      **regressor: Any) -> dict[str, float | list[float]]:
    """Action R² from aggregate pairs. train_agg_pairs: (N, 2·D) [z_AGG,1; z_AGG,2], train_a: (N, A)."""
    return equivariance_r2(train_agg_pairs, train_a, test_agg_pairs, test_a, **regressor)
