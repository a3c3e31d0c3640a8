"""Equivariance R²: how well a frozen representation predicts an action (SIE / seq-JEPA protocol).

Definitions (y: (N, A) true actions, ŷ: predictions, ȳ_a the mean of output a, ȳ the mean of
all N·A entries):

- ``r2_per_dim[a] = 1 − Σ_n (y_na − ŷ_na)² / Σ_n (y_na − ȳ_a)²``  (scikit-learn ``r2_score``,
  ``multioutput="raw_values"``; a constant output scores 1 if predicted exactly, else 0).
- ``r2_sklearn = mean_a r2_per_dim[a]``  — the uniform average seq-JEPA reports.
- ``r2_global = 1 − Σ_na (y_na − ŷ_na)² / Σ_na (y_na − ȳ)²``  — SIE's ``eval_angle_prediction.py``
  variant: one mean over all outputs, so high-variance outputs dominate and differences in
  per-output means count as explained variance. The two are not interchangeable.

Regressor (fitted on the train split, scored on the test split):
- inputs standardised with train mean/std; targets standardised per output with train
  mean/std and predictions mapped back, so every output weighs the same in the training loss
  whatever its units (crop pixels vs hue factors). R² is computed in the original units.
- ``head="mlp"``: Linear(D, h)–ReLU–Linear(h, h)–ReLU–Linear(h, A), h = 1024 (SIE ``--deep-end``
  and seq-JEPA's rotation/crop/jitter head), MSE, Adam (lr 1e-3, no weight decay, constant lr as
  in SIE's evaluation script), batch 256. The paper trains 300 epochs (the default). On CPU this is
  slow: 2,000 pairs of 1024-d features took ~3.7 s per epoch on 2 shared cores, so CPU runs
  should lower ``epochs``/``hidden`` or use the linear head.
- ``head="linear"``: ridge regression solved exactly (scikit-learn ``Ridge``), the converged
  optimum of the linear head the paper trains with Adam for colour, blur and saccade positions.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from lab.eval.inputs import as_matrix, check_same_width, column_stats, standardise

Head = Literal["mlp", "linear"]


def r2_scores(y_true: torch.Tensor | np.ndarray, y_pred: torch.Tensor | np.ndarray) -> dict[str, float | list[float]]:
    """Both R² variants and the per-output values for (N, A) targets and predictions."""
    y = as_matrix(y_true, "y_true").cpu().double().numpy()
    p = as_matrix(y_pred, "y_pred").cpu().double().numpy()
    if y.shape != p.shape or y.shape[0] < 2:
        raise ValueError(f"y_true and y_pred must have the same (N, A) shape with N >= 2, got {y.shape} and {p.shape}")
    per_dim = r2_score(y, p, multioutput="raw_values")
    # SIE's global-mean R² has no library implementation; it is one line.
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - p) ** 2).sum())
    r2_global = 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)
    return {"r2_sklearn": float(per_dim.mean()), "r2_global": r2_global, "r2_per_dim": [float(v) for v in per_dim]}


def _fit_mlp(x: torch.Tensor, y: torch.Tensor, hidden: int, epochs: int, batch_size: int, lr: float, seed: int) -> torch.nn.Module:
    """Train the SIE deep-end head on (N, D) → (N, A) with MSE; returns it in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, y.shape[1]),
        ).to(x.device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=0.0)
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(x.shape[0], generator=gen).split(batch_size):
                idx = idx.to(x.device)
                loss = torch.nn.functional.mse_loss(head(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return head.eval()


def fit_predict(
    train_x: torch.Tensor, train_a: torch.Tensor, test_x: torch.Tensor, *,
    head: Head, hidden: int, epochs: int, batch_size: int, lr: float, seed: int,
) -> torch.Tensor:
    """Fit the regressor on standardised train data and return (M, A) test predictions in target units."""
    xtr, xte = standardise(train_x, test_x)
    y_mean, y_scale = column_stats(train_a)
    ytr = (train_a - y_mean) / y_scale
    if head == "linear":
        ridge = Ridge(alpha=1.0).fit(xtr.cpu().double().numpy(), ytr.cpu().double().numpy())
        pred = torch.as_tensor(ridge.predict(xte.cpu().double().numpy()), dtype=torch.float32, device=xte.device)
        pred = pred.reshape(xte.shape[0], -1)  # Ridge returns (M,) for a single target column
    elif head == "mlp":
        model = _fit_mlp(xtr, ytr, hidden, epochs, batch_size, lr, seed)
        with torch.no_grad():
            pred = torch.cat([model(chunk) for chunk in xte.split(8192)])
    else:
        raise ValueError(f"head must be 'mlp' or 'linear', got {head!r}")
    return pred * y_scale + y_mean


def equivariance_r2(
    train_x: torch.Tensor | np.ndarray,
    train_a: torch.Tensor | np.ndarray,
    test_x: torch.Tensor | np.ndarray,
    test_a: torch.Tensor | np.ndarray,
    *,
    head: Head = "mlp",
    hidden: int = 1024,
    epochs: int = 300,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, float | list[float]]:
    """Test R² of a regressor from frozen features to actions.

    train_x: (N, D) features, typically [z1; z2] concatenated per pair (D = 2·512);
    train_a: (N, A) actions, e.g. relative quaternions (A = 4); test_x: (M, D); test_a: (M, A).
    Returns {"r2_sklearn": float, "r2_global": float, "r2_per_dim": list of A floats}.
    """
    xtr = as_matrix(train_x, "train_x")
    xte = as_matrix(test_x, "test_x").to(xtr.device)
    atr, ate = as_matrix(train_a, "train_a").to(xtr.device), as_matrix(test_a, "test_a")
    check_same_width(xtr, xte, "features")
    check_same_width(atr, ate, "actions")
    for x, a, split in ((xtr, atr, "train"), (xte, ate, "test")):
        if x.shape[0] != a.shape[0]:
            raise ValueError(f"{split}_x has {x.shape[0]} rows but {split}_a has {a.shape[0]}")
    if min(xtr.shape[0], xte.shape[0]) < 2:
        raise ValueError("equivariance_r2 needs at least 2 train and 2 test rows")
    if epochs < 1 or batch_size < 1 or hidden < 1:
        raise ValueError(f"epochs, batch_size and hidden must be >= 1, got {epochs}, {batch_size}, {hidden}")
    pred = fit_predict(xtr, atr, xte, head=head, hidden=hidden, epochs=epochs,
                       batch_size=batch_size, lr=lr, seed=seed)
    return r2_scores(ate, pred)
