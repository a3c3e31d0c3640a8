"""Cheap collapse checks for an embedding matrix (the health panel beside RankMe).

Definitions, for z: (N, D) and u_n = z_n / ‖z_n‖ (rows ℓ2-normalised):

- ``normalised_std`` = mean over dimensions d of std_n(u_nd) (population std). A collapsed
  representation scores ≈ 0; features spread evenly over the sphere score ≈ 1/√D.
- ``mean_cosine`` = mean over pairs n ≠ m of u_n·u_m, computed in O(N·D) from
  ‖Σ_n u_n‖² = N + Σ_{n≠m} u_n·u_m. Collapse → 1; centred, spread features → ≈ 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lab.eval.inputs import as_matrix


def collapse_stats(z: torch.Tensor | np.ndarray) -> dict[str, float]:
    """{"normalised_std", "mean_cosine"} of z: (N, D) with N >= 2 (see the module docstring)."""
    u = F.normalize(as_matrix(z, "z").double(), dim=1)
    n = u.shape[0]
    if n < 2:
        raise ValueError("collapse_stats needs at least 2 rows")
    pair_sum = float(u.sum(0).pow(2).sum()) - n
    return {"normalised_std": float(u.std(0, unbiased=False).mean()), "mean_cosine": pair_sum / (n * (n - 1))}


# A representation counts as collapsed when it is (nearly) one direction or (nearly) the same
# vector for every input. Measured on the step-2/3 runs (experiments/step2-teacherless): trained z
# has RankMe 21–41 and mean cosine 0.31–0.75; the untrained twins RankMe 16–19 but mean cosine up
# to 0.94 (ReLU features are not centred), hence the cosine limit sits close to 1.
COLLAPSE_RANKME = 2.0
COLLAPSE_COSINE = 0.99


def collapse_reason(rankme_value: float, stats: dict[str, float], name: str = "z") -> str | None:
    """"collapsed: …" naming the figure that crossed its limit, or None for a healthy representation."""
    if rankme_value < COLLAPSE_RANKME:
        return f"collapsed: RankMe({name}) {rankme_value:.2f} < {COLLAPSE_RANKME:g}"
    if stats["mean_cosine"] > COLLAPSE_COSINE:
        return f"collapsed: mean pairwise cosine of {name} {stats['mean_cosine']:.3f} > {COLLAPSE_COSINE:g}"
    return None
