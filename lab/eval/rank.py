"""RankMe (Garrido, Balestriero, Najman, LeCun, ICML 2023): effective rank of an embedding matrix.

Definition: for Z ∈ R^{N×K} with singular values σ_1 … σ_{min(N,K)},

    p_k = σ_k / Σ_j σ_j + ε,   ε = 1e-7,      RankMe(Z) = exp(−Σ_k p_k log p_k).

It lies in [1, min(N, K)] (up to ε): a rank-k matrix whose k non-zero singular values are
equal scores k; unequal spectra score less. Z is used as is (no centring), singular values of Z
itself (not covariance eigenvalues), in float64. An all-zero Z scores 1 (p_k = ε for every k).
Compute it separately for z and z_AGG, on many more samples than dimensions (the paper: 25,600).
"""

from __future__ import annotations

import numpy as np
import torch

from lab.eval.inputs import as_matrix


def rankme(z: torch.Tensor | np.ndarray, eps: float = 1e-7) -> float:
    """RankMe of z: (N, D) embeddings; returns a float in [1, min(N, D)]."""
    s = torch.linalg.svdvals(as_matrix(z, "z").double())
    p = s / s.sum().clamp_min(torch.finfo(torch.float64).tiny) + eps
    return float(torch.exp(-(p * p.log()).sum()))
