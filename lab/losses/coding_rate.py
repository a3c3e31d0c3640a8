"""Coding rate of a set of features (MCR², Yu et al. 2020; reference §2).

For n features z_1..z_n ∈ R^d, each ℓ2-normalised onto the unit sphere, stacked as the rows
of Z (n × d):

    R(Z; ε²) = ½ · logdet( I_d + d / (n ε²) · ZᵀZ )

The argument is **ε²** (`eps_sq`), as in `ryanchankh/mcr2`'s `--eps` and SimDINO: codebases
disagree on ε vs ε², and mixing them shifts R by large factors. R is the log-volume of the
features' ε-ball covering; it is largest, (d/2)·log(1 + 1/ε²) when n ≥ d, for isotropic features
(ZᵀZ = (n/d)·I), and ½·log(1 + d/ε²) when every feature is the same vector.

The class-conditional (compression) form, for memberships y ∈ {0..K−1}:

    R^c(Z | y; ε²) = Σ_k (n_k / 2n) · logdet( I_d + d / (n_k ε²) · Z_kᵀZ_k )

Numerics: always float32 or wider, even under autocast (logdet of a bf16 Gram matrix is useless);
when n < d the n × n Gram matrix is used (Sylvester: det(I_d + αZᵀZ) = det(I_n + αZZᵀ)); the
log-determinant comes from a Cholesky factor, since I + αG is symmetric positive definite with
every eigenvalue ≥ 1, so gradients stay finite even when all features coincide.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _half_logdet_identity_plus(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """½ logdet(I + α·ZᵀZ) for z: (n, d), using the smaller of the two Gram matrices."""
    gram = z.T @ z if z.shape[0] >= z.shape[1] else z @ z.T
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    chol, _ = torch.linalg.cholesky_ex(eye + alpha * gram)
    return chol.diagonal().log().sum()


def _unit_rows(z: torch.Tensor) -> torch.Tensor:
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"coding_rate needs a non-empty (n, d) matrix, got shape {tuple(z.shape)}")
    return F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)


def coding_rate(z: torch.Tensor, eps_sq: float) -> torch.Tensor:
    """R(Z; ε²) of z: (n, d) (rows are normalised here) → scalar tensor. `eps_sq` is ε², not ε."""
    if eps_sq <= 0:
        raise ValueError(f"eps_sq (ε²) must be > 0, got {eps_sq}")
    with torch.autocast(z.device.type, enabled=False):
        u = _unit_rows(z)
        n, d = u.shape
        return _half_logdet_identity_plus(u, d / (n * eps_sq))


def max_coding_rate(dim: int, eps_sq: float) -> float:
    """(d/2)·log(1 + 1/ε²): the rate of isotropic unit features (n ≥ d), the largest possible."""
    return dim / 2 * math.log1p(1 / eps_sq)


def class_coding_rate(z: torch.Tensor, labels: torch.Tensor, eps_sq: float) -> torch.Tensor:
    """R^c(Z | y; ε²): z (n, d), labels (n,) int → scalar; the n_k/n-weighted rate of each class."""
    if labels.shape != (z.shape[0],):
        raise ValueError(f"labels must be ({z.shape[0]},) to match z, got {tuple(labels.shape)}")
    with torch.autocast(z.device.type, enabled=False):
        u = _unit_rows(z)
        n, d = u.shape
        total = u.new_zeros(())
        for k in labels.unique():
            part = u[labels == k]
            total = total + part.shape[0] / n * _half_logdet_identity_plus(part, d / (part.shape[0] * eps_sq))
        return total
