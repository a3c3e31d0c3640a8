"""Every `lab llm` figure (matplotlib, Agg backend); each function writes one PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: Path, caption: str | None = None) -> Path:
    """Add the caption under the axes, save at a small size and close."""
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=8, wrap=True, va="bottom")
        fig.subplots_adjust(bottom=0.22)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _smooth(x: list[float], k: int = 10) -> np.ndarray:
    """Trailing moving average of `x` over up to `k` steps."""
    a = np.asarray(x, dtype=float)
    c = np.cumsum(np.insert(a, 0, 0.0))
    idx = np.arange(1, len(a) + 1)
    lo = np.maximum(0, idx - k)
    return (c[idx] - c[lo]) / (idx - lo)


def loss_curves(curves: dict[str, dict], path: Path, title: str) -> Path:
    """Train (smoothed, solid) and validation (dashed, dots) loss against step for each labelled run."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (label, c) in enumerate(curves.items()):
        color = f"C{i}"
        steps = np.arange(1, len(c["train_loss"]) + 1)
        ax.plot(steps, _smooth(c["train_loss"]), color=color, lw=1.2, label=f"{label} train")
        ax.plot(c["val_steps"], c["val_loss"], "o--", color=color, ms=3, label=f"{label} val")
    ax.set(xlabel="step", ylabel="loss (nats/token)", title=title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def sweep(param: str, values: list[float], curves: list[dict], final_val: list[float], path: Path,
          caption: str) -> Path:
    """Left: validation curves of every run; right: final validation loss against the swept value."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    fig.subplots_adjust(wspace=0.3)
    for i, (v, c) in enumerate(zip(values, curves)):
        a.plot(c["val_steps"], c["val_loss"], "o-", ms=3, color=f"C{i}", label=f"{param}={v:g}")
    a.set(xlabel="step", ylabel="validation loss (new domain)", title="curves")
    a.legend(fontsize=7)
    ys = [np.nan if y is None else y for y in final_val]
    b.plot(values, ys, "o-")
    b.set(xlabel=param, ylabel="final validation loss", title="final loss", xscale="log")
    b.minorticks_off()
    b.set_xticks(values, [f"{v:g}" for v in values])
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return _save(fig, path, caption)


def forgetting(table: dict[str, tuple[float, float]], path: Path, caption: str) -> Path:
    """Before/after bars: losses (left) and next-token accuracies (right), from {name: (before, after)}."""
    losses = {k: v for k, v in table.items() if k.endswith("loss")}
    accs = {k: v for k, v in table.items() if not k.endswith("loss")}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, group, ylabel in ((axes[0], losses, "loss (nats/token)"), (axes[1], accs, "next-token accuracy")):
        x = np.arange(len(group))
        ax.bar(x - 0.2, [v[0] for v in group.values()], 0.4, label="before")
        ax.bar(x + 0.2, [v[1] for v in group.values()], 0.4, label="after")
        ax.set_xticks(x, list(group), rotation=15, fontsize=8)
        ax.set(ylabel=ylabel)
        if group is losses:  # losses differ by tenths on a base of ~5: do not start the axis at zero
            values = [x for pair in group.values() for x in pair]
            ax.set_ylim(min(values) - 0.1 * (max(values) - min(values) + 1), max(values) + 0.05)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path, caption)


def attention_head(attn: np.ndarray, tokens: list[str], path: Path, title: str, caption: str) -> Path:
    """Heatmap of one head's attention [T, T] (rows: queries, columns: keys) with token labels."""
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    ax.imshow(attn, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=6)
    ax.set(xlabel="key", ylabel="query", title=title)
    return _save(fig, path, caption)


def attention_grid(attn: np.ndarray, path: Path, caption: str) -> Path:
    """All heads [L, H, T, T] as an L × H grid of small heatmaps."""
    n_layers, n_heads = attn.shape[:2]
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(1.4 * n_heads + 0.5, 1.4 * n_layers + 1.2), squeeze=False)
    for layer in range(n_layers):
        for head in range(n_heads):
            ax = axes[layer, head]
            ax.imshow(attn[layer, head], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{layer}.{head}", fontsize=7)
    return _save(fig, path, caption)


def head_matrices(mats: dict[str, np.ndarray], path: Path, caption: str) -> Path:
    """One annotated heatmap per named [L, H] statistic (entropy, distance, divergence …)."""
    fig, axes = plt.subplots(1, len(mats), figsize=(4.8 * len(mats), 3.8), squeeze=False)
    fig.subplots_adjust(wspace=0.45)
    for ax, (name, m) in zip(axes[0], mats.items()):
        im = ax.imshow(m, cmap="magma", aspect="auto")
        ax.set(xlabel="head", ylabel="layer", title=name)
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        if m.size <= 96:
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="cyan")
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path, caption)


def layer_stats(stats: dict[str, tuple[list[int], list[float]]], path: Path, caption: str) -> Path:
    """One line plot per named statistic {name: (residual points, values)}, side by side."""
    fig, axes = plt.subplots(1, len(stats), figsize=(3.6 * len(stats), 3.6), squeeze=False)
    for ax, (name, (xs, ys)) in zip(axes[0], stats.items()):
        ax.plot(xs, ys, "o-")
        ax.set(xlabel="residual point (0 = embeddings)", title=name, xticks=xs)
        ax.grid(alpha=0.3)
    return _save(fig, path, caption)


def position_norms(norms: np.ndarray, path: Path, caption: str) -> Path:
    """Residual norm by layer (rows) and token position (columns): [L+1, T]."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    im = ax.imshow(norms, cmap="viridis", aspect="auto")
    ax.set(xlabel="token position", ylabel="residual point (0 = embeddings)", title="mean residual norm")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _save(fig, path, caption)


def probes(trained: dict[str, list[float]], control: dict[str, list[float]], majority: dict[str, float],
           path: Path, caption: str) -> Path:
    """Probe accuracy by layer per property: trained model (solid), random init (dashed), majority (dotted)."""
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for i, name in enumerate(trained):
        color = f"C{i}"
        ax.plot(trained[name], "o-", color=color, label=f"{name} (trained)")
        ax.plot(control[name], "x--", color=color, alpha=0.7, label=f"{name} (random init)")
        ax.axhline(majority[name], color=color, ls=":", lw=1)
    ax.set(xlabel="residual point (0 = embeddings, l = after layer l)", ylabel="probe accuracy (held out)",
           title="linear probes by layer", xticks=range(len(next(iter(trained.values())))))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path, caption)
