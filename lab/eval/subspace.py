"""Equivariant vs invariant subspaces of a representation, from several views of each sample.

For features z: (N, V, D), V views of each of N samples:

- equivariant part: the variation across views of one sample, e_nv = z_nv − z̄_n with
  z̄_n = mean_v z_nv; covariance C_eq = Σ_nv e_nv e_nvᵀ / (N·V).
- invariant part: the variation of the per-sample means, i_n = z̄_n − mean_n z̄_n; covariance
  C_inv = Σ_n i_n i_nᵀ / N.

(tr C_eq + tr C_inv is the total variance: the law of total variance.) Reported, with λ the
eigenvalues of each covariance:

- ``rank_eq_eff``, ``rank_inv_eff``: participation ratio (Σλ)² / Σλ² (1 for one direction, D
  for an isotropic spread);
- ``var_eq_frac``: tr C_eq / (tr C_eq + tr C_inv), the explained-variance share of the views'
  variation (0: perfectly invariant, 1: nothing but view variation);
- ``overlap``: mean cos² of the principal angles between the top-k eigenvectors of C_eq and of
  C_inv, k = min(round(rank_eq_eff), round(rank_inv_eff)) ≥ 1: 1 when the two subspaces
  coincide, ≈ k/D for random subspaces, 0 when orthogonal;
- ``spectrum_eq``, ``spectrum_inv``: the eigenvalues, largest first, normalised to sum 1 (plots).
"""

from __future__ import annotations

import numpy as np
import torch


def _eig_desc(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    vals, vecs = torch.linalg.eigh(cov)
    return vals.flip(0).clamp_min(0), vecs.flip(1)


def _participation_ratio(vals: torch.Tensor) -> float:
    total = float(vals.sum())
    return total**2 / float((vals**2).sum()) if total > 0 else 0.0


def subspace_metrics(z: torch.Tensor | np.ndarray) -> dict[str, float | list[float]]:
    """The quantities of the module docstring for z: (N, V, D) with N ≥ 2 samples and V ≥ 2 views."""
    t = torch.as_tensor(z).detach().double().cpu()
    if t.ndim != 3 or t.shape[0] < 2 or t.shape[1] < 2:
        raise ValueError(f"subspace_metrics needs (N ≥ 2 samples, V ≥ 2 views, D) features, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("subspace_metrics: features contain NaN or Inf values")
    n, v, _ = t.shape
    means = t.mean(1)
    eq = (t - means[:, None]).flatten(0, 1)
    inv = means - means.mean(0)
    val_eq, vec_eq = _eig_desc(eq.T @ eq / (n * v))
    val_inv, vec_inv = _eig_desc(inv.T @ inv / n)
    rank_eq, rank_inv = _participation_ratio(val_eq), _participation_ratio(val_inv)
    k = max(1, min(round(rank_eq), round(rank_inv)))
    cosines = torch.linalg.svdvals(vec_eq[:, :k].T @ vec_inv[:, :k])
    tr_eq, tr_inv = float(val_eq.sum()), float(val_inv.sum())
    return {
        "rank_eq_eff": rank_eq, "rank_inv_eff": rank_inv,
        "var_eq_frac": tr_eq / (tr_eq + tr_inv) if tr_eq + tr_inv > 0 else 0.0,
        "overlap": float((cosines**2).mean()),
        "spectrum_eq": (val_eq / max(tr_eq, 1e-300)).tolist(), "spectrum_inv": (val_inv / max(tr_inv, 1e-300)).tolist(),
    }
