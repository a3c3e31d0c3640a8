"""PNG plots of a run: training curves, z_AGG accuracy vs M_val, R² per action dimension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def _curves(history: list[dict[str, Any]], path: Path) -> None:
    steps = [r["step"] for r in history]
    fig, (ax_loss, ax_probe) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(steps, [r["loss"] for r in history])
    ax_loss.set(xlabel="step", ylabel="1 − cos", title="prediction loss")
    for key in sorted(k for k in history[-1] if k.startswith("probe/")):
        ax_probe.plot(steps, [r[key] for r in history], label=key.removeprefix("probe/"))
    ax_probe.set(xlabel="step", title="online probes (train batches)")
    ax_probe.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _acc_vs_mval(results: dict[str, Any], m_vals: list[int], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.plot(m_vals, [results[f"eval.linacc_agg@M{k}"] for k in m_vals], marker="o", label="z_AGG")
    ax.axhline(results["eval.linacc_enc"], color="gray", ls="--", label="z (encoder)")
    ax.axhline(results["eval.chance"], color="red", ls=":", label="chance")
    ax.set(xlabel="M_val (context views)", ylabel="linear top-1", title="accuracy vs M_val")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _r2_per_dim(results: dict[str, Any], names: list[str], path: Path) -> None:
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(names)), 3.6))
    ax.bar([x - 0.2 for x in xs], [results[f"eval.r2_equi@{n}"] for n in names], width=0.4, label="[z1; z2] (equivariance)")
    ax.bar([x + 0.2 for x in xs], [results[f"eval.leak_r2@{n}"] for n in names], width=0.4, label="[z_AGG1; z_AGG2] (leakage)")
    ax.set_xticks(list(xs), names, rotation=45, ha="right")
    ax.set(ylabel="test R² (sklearn)", title="relative-action R² per dimension")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_run(run_dir: Path, results: dict[str, Any], history: list[dict[str, Any]], m_vals: list[int],
             action_names: list[str]) -> list[Path]:
    """Write RUN/plots/{curves,acc_vs_mval,r2_per_dim}.png; returns the paths written."""
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    paths = []
    if history:
        _curves(history, out / "curves.png")
        paths.append(out / "curves.png")
    _acc_vs_mval(results, m_vals, out / "acc_vs_mval.png")
    _r2_per_dim(results, action_names, out / "r2_per_dim.png")
    return paths + [out / "acc_vs_mval.png", out / "r2_per_dim.png"]
