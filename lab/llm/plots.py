"""Every `lab llm` figure (matplotlib, Agg backend); each function writes one PNG and returns its path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import matplotlib.image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


CAPTION_PT = 8


def _save(fig: plt.Figure, path: Path, caption: str | None = None, title: str | None = None,
          layout: bool = True) -> Path:
    """Lay out (unless `layout` is false), add the title and the caption (wrapped to the figure's width,
    below everything), save, close. Saving with a tight bounding box grows the image to hold the
    caption, so it is never cut off.
    """
    if title:
        fig.suptitle(title)
    if layout:
        fig.tight_layout()
    if caption:
        chars_per_line = int(fig.get_figwidth() * 72 / (CAPTION_PT * 0.55))
        fig.text(0.01, 0.0, textwrap.fill(caption, chars_per_line), fontsize=CAPTION_PT, va="top", ha="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return path


def _text_colour(image: matplotlib.image.AxesImage, value: float) -> str:
    """Black on light cells, white on dark ones (by the cell colour's luminance)."""
    r, g, b, _ = image.cmap(image.norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _smooth(x: list[float], k: int = 10) -> np.ndarray:
    """Trailing moving average of `x` over up to `k` steps."""
    a = np.asarray(x, dtype=float)
    c = np.cumsum(np.insert(a, 0, 0.0))
    idx = np.arange(1, len(a) + 1)
    lo = np.maximum(0, idx - k)
    return (c[idx] - c[lo]) / (idx - lo)


RUN_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]  # (line, marker) per run: overlaps stay visible


def loss_curves(curves: dict[str, dict], path: Path, title: str, caption: str | None = None,
                control: tuple[str, float] | None = None) -> Path:
    """Train (smoothed, thin line) and validation (markers) loss against step for each labelled run, and
    a control's loss as a dashed line when given (label, value), e.g. the unigram model's for the base.

    Every run has its own line style and marker, so curves that coincide stay distinguishable; with
    exactly two runs a second panel shows their difference (second − first), where a near-zero gap
    is visible as such instead of one curve hiding the other.
    """
    pair = len(curves) == 2
    fig, axes = plt.subplots(1, 2 if pair else 1, figsize=(11 if pair else 7, 4.2), squeeze=False)
    ax = axes[0, 0]
    for i, (label, c) in enumerate(curves.items()):
        line, marker = RUN_STYLES[i % len(RUN_STYLES)]
        steps = np.arange(1, len(c["train_loss"]) + 1)
        ax.plot(steps, _smooth(c["train_loss"]), ls=line, color=f"C{i}", lw=1.2, label=f"{label} train (smoothed)")
        ax.plot(c["val_steps"], c["val_loss"], ls=line, marker=marker, mfc="none", ms=6 + 2 * i, color=f"C{i}",
                lw=0.8, label=f"{label} validation")
    if control is not None:
        ax.axhline(control[1], color="black", ls="--", lw=1, label=f"{control[0]} (control)")
    ax.set(xlabel="step", ylabel="loss (nats/token)", title="loss")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    if pair:
        (name_a, a), (name_b, b) = curves.items()
        diff = axes[0, 1]
        n = min(len(a["train_loss"]), len(b["train_loss"]))
        diff.plot(np.arange(1, n + 1), _smooth(b["train_loss"][:n]) - _smooth(a["train_loss"][:n]), color="C2",
                  lw=1.2, label="train (smoothed)")
        if a["val_steps"] == b["val_steps"]:
            diff.plot(a["val_steps"], np.subtract(b["val_loss"], a["val_loss"]), "o-", color="C3", ms=5,
                      label="validation")
        diff.axhline(0, color="black", lw=0.6)
        diff.set(xlabel="step", ylabel=f"{name_b} − {name_a} (nats/token)", title=f"difference: {name_b} − {name_a}")
        diff.legend(fontsize=7)
        diff.grid(alpha=0.3)
    return _save(fig, path, caption, title)


def sweep(param: str, values: list[float], curves: list[dict], final_val: list[float], path: Path,
          caption: str) -> Path:
    """Left: validation curves of every run; right: final validation loss against the swept value, best starred.

    Both axes stop a little above the common starting loss: a run that ends above it did worse than not
    training, and its value is written at the top edge instead of squashing every other run into a line.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    for i, (v, c) in enumerate(zip(values, curves)):
        a.plot(c["val_steps"], c["val_loss"], "o-", ms=3, color=f"C{i}", label=f"{param}={v:g}")
    a.set(xlabel="step", ylabel="validation loss (new domain)", title="curves")
    a.legend(fontsize=7)
    ys = np.array([np.nan if y is None else y for y in final_val], dtype=float)
    b.plot(values, ys, "o-")
    for ax in (a, b):  # every run starts from the base model: its loss is the control
        ax.axhline(curves[0]["val_loss"][0], color="black", ls="--", lw=0.8, label="base model (control)")
    if np.isfinite(ys).any():
        best = int(np.nanargmin(ys))
        b.plot(values[best], ys[best], "*", color="C3", ms=14, label=f"best: {param}={values[best]:g}")
        start = curves[0]["val_loss"][0]
        if start > ys[best]:
            top = start + 0.3 * (start - ys[best])
            a.set_ylim(top=top)
            b.set_ylim(top=top)
            for v, y in zip(values, ys):
                if not y <= top:  # above the axis, or diverged (NaN)
                    b.plot(v, top, "^", color="C1", ms=8, clip_on=False)
                    b.annotate("diverged" if np.isnan(y) else f"{y:.2f}", (v, top), xytext=(0, -14),
                               textcoords="offset points", ha="center", fontsize=8, color="C1")
        b.legend(fontsize=8)
    b.set(xlabel=param, ylabel="final validation loss", title="final loss", xscale="log")
    b.minorticks_off()
    b.set_xticks(values, [f"{v:g}" for v in values], rotation=45)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return _save(fig, path, caption, f"{param} sweep")


def forgetting(table: dict[str, tuple[float, float]], path: Path, caption: str, title: str,
               control: dict[str, float] | None = None) -> Path:
    """Left: change in loss per domain (after − before) on an axis through zero, annotated before → after,
    beside the control's change (the same recipe fine-tuned on prose) when given; right: next-token
    accuracies before and after (and the control's), bars from zero. `table` is {name: (before, after)},
    `control` {name: after} for the control run."""
    losses = {k.removesuffix("_loss"): v for k, v in table.items() if k.endswith("_loss")}
    accs = {k.removesuffix("_acc"): v for k, v in table.items() if k.endswith("_acc")}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4.2))
    x = np.arange(len(losses))
    width = 0.38 if control else 0.5
    change = [after - before for before, after in losses.values()]
    bars = ax_loss.bar(x - (width / 2 if control else 0), change, width, color=["C3" if d > 0 else "C2" for d in change],
                       label="fine-tuned on code")
    ax_loss.bar_label(bars, [f"{b:.3f} → {a:.3f}" for b, a in losses.values()], padding=3, fontsize=8)
    if control:
        ctrl = [control[f"{k}_loss"] - before for k, (before, _) in losses.items()]
        ax_loss.bar(x + width / 2, ctrl, width, color="grey", label="control: same recipe on prose")
        ax_loss.legend(fontsize=8)
    ax_loss.axhline(0, color="black", lw=0.8)
    ax_loss.margins(y=0.25)
    ax_loss.set_xticks(x, list(losses))
    ax_loss.set(xlabel="validation domain", ylabel="after − before (nats/token)", title="loss change (up = worse)")
    x = np.arange(len(accs))
    step = 0.27 if control else 0.4
    ax_acc.bar(x - step, [100 * b for b, _ in accs.values()], step, label="before")
    ax_acc.bar(x, [100 * a for _, a in accs.values()], step, label="after (code)")
    if control:
        ax_acc.bar(x + step, [100 * control[f"{k}_acc"] for k in accs], step, color="grey", label="after (control)")
    ax_acc.set_xticks(x, list(accs))
    ax_acc.set(xlabel="probe suite", ylabel="next-token accuracy (%)", title="next-token accuracy")
    ax_acc.legend(fontsize=8)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path, caption, title)


def attention_head(attn: np.ndarray, tokens: list[str], path: Path, title: str, caption: str) -> Path:
    """Heatmap of one head's attention [T, T] (rows: queries, columns: keys) with token labels."""
    fig, ax = plt.subplots(figsize=(7, 6.5))
    im = ax.imshow(attn, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=6)
    ax.set(xlabel="key (attended-to token)", ylabel="query token", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="attention weight")
    return _save(fig, path, caption)


def attention_grid(attn: np.ndarray, path: Path, caption: str) -> Path:
    """All heads [L, H, T, T] as an L × H grid of heatmaps: rows are layers, columns heads, one colour scale."""
    n_layers, n_heads = attn.shape[:2]
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(1.5 * n_heads + 1.5, 1.5 * n_layers + 1), squeeze=False)
    for layer in range(n_layers):
        for head in range(n_heads):
            ax = axes[layer, head]
            im = ax.imshow(attn[layer, head], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if layer == 0:
                ax.set_title(f"head {head}", fontsize=8)
            if head == 0:
                ax.set_ylabel(f"layer {layer}\nquery", fontsize=8)
            if layer == n_layers - 1:
                ax.set_xlabel("key", fontsize=8)
    fig.colorbar(im, ax=axes, fraction=0.02, pad=0.02, label="attention weight")
    # tight_layout cannot place a colorbar shared by the whole grid: keep subplots' own layout
    return _save(fig, path, caption, "attention of every head on the prompt (row: query token, column: key token)",
                 layout=False)


def head_matrices(mats: dict[str, np.ndarray], path: Path, caption: str) -> Path:
    """One annotated heatmap per named [L, H] statistic (entropy, distance, divergence …)."""
    fig, axes = plt.subplots(1, len(mats), figsize=(4.8 * len(mats), 3.8), squeeze=False)
    for ax, (name, m) in zip(axes[0], mats.items()):
        im = ax.imshow(m, cmap="magma", aspect="auto")
        ax.set(xlabel="head", ylabel="layer", title=name)
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        if m.size <= 96:
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color=_text_colour(im, v))
        fig.colorbar(im, ax=ax, fraction=0.046, label=name)
    return _save(fig, path, caption)


def layer_stats(stats: dict[str, tuple[list[int], list[float]]], path: Path, caption: str) -> Path:
    """One line plot per named statistic {name: (residual points, values)}, side by side."""
    fig, axes = plt.subplots(1, len(stats), figsize=(3.6 * len(stats), 3.6), squeeze=False)
    for ax, (name, (xs, ys)) in zip(axes[0], stats.items()):
        ax.plot(xs, ys, "o-")
        ax.set(xlabel="residual point (0 = embeddings)", ylabel=name, title=name, xticks=xs)
        ax.grid(alpha=0.3)
    return _save(fig, path, caption)


def position_norms(norms: np.ndarray, path: Path, caption: str) -> Path:
    """Residual norm by layer (rows) and token position (columns): [L+1, T]."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    im = ax.imshow(norms, cmap="viridis", aspect="auto")
    ax.set(xlabel="token position", ylabel="residual point (0 = embeddings)", title="mean residual norm")
    fig.colorbar(im, ax=ax, fraction=0.03, label="mean residual-stream norm")
    return _save(fig, path, caption)


def probes(results: dict, path: Path, caption: str) -> Path:
    """One panel per property: test accuracy by residual point of the trained model's probe (solid), the
    random-init twin's (dashed), the control task's on the trained model (dash-dot, Hewitt & Liang), the
    majority class (dotted), and the point chosen on validation (star and grey line)."""
    names = list(results["probe_trained"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        trained = results["probe_trained"][name]["test"]
        ax.plot(trained, "o-", color="C0", label="trained model")
        ax.plot(results["probe_random_init"][name]["test"], "x--", color="C1", label="random-init twin (control)")
        ax.plot(results["probe_control_task"][name]["test"], "s-.", color="C2", ms=4, label="control task (control)")
        ax.axhline(results["probe_majority"][name], color="black", ls=":", lw=1, label="majority class (chance)")
        point = results["probe_point"][name]
        ax.axvline(point, color="grey", lw=0.8)
        ax.plot([point], [trained[point]], "*", color="C0", ms=12, label="point chosen on validation")
        ax.set(xlabel="residual point (0 = embeddings, l = after layer l)", ylabel="probe accuracy (test blocks)",
               title=f"{name}: selectivity {results['probe_selectivity'][name]:+.2f}", xticks=range(len(trained)))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, path, caption)
