"""PNG plots of a run: training curves (the total loss and each of its terms on its own axes), z_AGG
accuracy vs M_val, R² per action dimension, representation health (trained vs untrained twin), subspace
spectra, and `lab compare`'s groups with the difference it reports. Every axis is labelled; chance and the
untrained twin (the control) are drawn where the results hold them. `seeds_and_means` and `steps_axis` draw
a figure over training budgets (every seed and the mean with its interval, a log2 axis at the budgets run),
shared by the experiments' analyses (experiments/learning-curve, experiments/split)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def _curves(history: list[dict[str, Any]], path: Path, chance: float | None = None) -> None:
    """The total loss and each loss term on its own panel (their scales differ by orders of magnitude, so
    on one axis the small terms would lie flat under the large one), then the online probes with chance."""
    steps = [r["step"] for r in history]
    terms = ["loss"] + sorted(k for k in history[-1] if k.startswith("loss/"))
    probes = sorted(k for k in history[-1] if k.startswith("probe/"))
    fig, axes = plt.subplots(1, len(terms) + 1, figsize=(3.4 * (len(terms) + 1), 3.4), squeeze=False)
    for ax, key in zip(axes[0], terms):
        ax.plot(steps, [r.get(key, float("nan")) for r in history], color="black" if key == "loss" else "C0")
        name = "total loss" if key == "loss" else f"term {key.removeprefix('loss/')}"
        ax.set(xlabel="step", ylabel=name, title=name)
        ax.grid(alpha=0.3)
    ax_probe = axes[0][-1]
    for key in probes:
        ax_probe.plot(steps, [r.get(key, float("nan")) for r in history], label=key.removeprefix("probe/"))
    if chance is not None and any("acc" in k for k in probes):
        ax_probe.axhline(chance, color="red", ls=":", label=f"chance (accuracy) {chance:.3f}")
    ax_probe.set(xlabel="step", ylabel="accuracy / R² (train batches)", title="online probes")
    ax_probe.legend(fontsize=7)
    ax_probe.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _acc_vs_mval(results: dict[str, Any], m_vals: list[int], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    ax.plot(m_vals, [results[f"eval.linacc_agg@M{k}"] for k in m_vals], marker="o", label="z_AGG (trained)")
    if all(f"init.linacc_agg@M{k}" in results for k in m_vals):
        ax.plot(m_vals, [results[f"init.linacc_agg@M{k}"] for k in m_vals], marker="x", ls="--", color="C0",
                alpha=0.6, label="z_AGG (untrained twin)")
    ax.axhline(results["eval.linacc_enc"], color="gray", ls="--", label="z (encoder, trained)")
    if "init.linacc_enc" in results:
        ax.axhline(results["init.linacc_enc"], color="gray", ls=":", label="z (encoder, untrained twin)")
    ax.axhline(results["eval.chance"], color="red", ls=":", label="chance")
    ax.set(xlabel="M_val (context views)", ylabel="linear-probe top-1 accuracy", title="accuracy vs M_val")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _r2_per_dim(results: dict[str, Any], names: list[str], path: Path) -> None:
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(names)) + 3, 3.6))  # + room for the legend beside
    ax.bar([x - 0.2 for x in xs], [results[f"eval.r2_equi@{n}"] for n in names], width=0.4, label="[z1; z2] (equivariance)")
    ax.bar([x + 0.2 for x in xs], [results[f"eval.leak_r2@{n}"] for n in names], width=0.4, label="[z_AGG1; z_AGG2] (leakage)")
    if all(f"init.r2_equi@{n}" in results for n in names):  # the untrained twin: the control
        ax.plot([x - 0.2 for x in xs], [results[f"init.r2_equi@{n}"] for n in names], "k_", ms=14, mew=2,
                label="untrained twin, [z1; z2]")
    ax.set_xticks(list(xs), names, rotation=45, ha="right")
    ax.set(xlabel="action dimension", ylabel="test R² (sklearn)", title="relative-action R² per dimension")
    ax.axhline(0, color="black", lw=0.5, label="R² = 0: predicting the mean")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: never over a bar
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


_HEALTH = [("rankme_enc", "RankMe z"), ("rankme_agg", "RankMe z_AGG"), ("std_enc", "std z (×√D)"),
           ("cos_enc", "mean cos z"), ("cos_agg", "mean cos z_AGG"), ("var_eq_frac", "view var. share z"),
           ("agg_var_eq_frac", "view var. share z_AGG")]


def _health(results: dict[str, Any], dim: int, path: Path) -> None:
    """Trained vs untrained twin, one panel per figure (scales differ)."""
    fig, axes = plt.subplots(1, len(_HEALTH), figsize=(2.1 * len(_HEALTH), 3.0))
    for ax, (key, label) in zip(axes, _HEALTH, strict=True):
        scale = dim**0.5 if key == "std_enc" else 1.0
        ax.bar(["untrained\ntwin", "trained"], [results[f"init.{key}"] * scale, results[f"eval.{key}"] * scale],
               color=["gray", "C0"])
        ax.set_title(label, fontsize=9)
        ax.set_ylabel(label, fontsize=8)
        ax.set_xlabel("network", fontsize=8)
    fig.suptitle(results.get("eval.collapse_reason", "representation health"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _spectra(spectra: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """Eigenvalue spectra (normalised) of the equivariant and invariant parts, z and single-view z_AGG."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, rep in zip(axes, ("z", "z_AGG"), strict=True):
        for model, style in (("eval", "-"), ("init", ":")):
            sub = spectra[model][rep]
            for part, colour in (("eq", "C1"), ("inv", "C0")):
                values = sub[f"spectrum_{part}"]
                label = f"{'trained' if model == 'eval' else 'untrained'} {part} (eff. rank {sub[f'rank_{part}_eff']:.1f})"
                ax.semilogy(range(1, len(values) + 1), [max(v, 1e-8) for v in values], style, color=colour, label=label)
        ax.set(xlabel="component", ylabel="share of variance", title=f"{rep}: view (eq) vs sample (inv) variation")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _layer_stats(results: dict[str, Any], path: Path) -> bool:
    """Per-layer ISTA sparsity and per-head coding rate (CRATE aggregators), trained vs untrained."""
    layers = sorted({int(k.split(".")[1].removeprefix("layer")) for k in results if k.startswith("eval.layer")})
    if not layers:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, stat, label in ((axes[0], "sparsity", "ISTA output: fraction of zeros"),
                            (axes[1], "rate_heads", "coding rate per head subspace (nats)")):
        for model, style in (("eval", "-o"), ("init", ":o")):
            ax.plot(layers, [results[f"{model}.layer{i}.{stat}"] for i in layers], style,
                    label="trained" if model == "eval" else "untrained")
        ax.set(xlabel="aggregator layer", ylabel=label, title=label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _layer_curves(history: list[dict[str, Any]], path: Path) -> bool:
    """Per-layer ISTA sparsity and per-head coding rate over training (CRATE: `agg/layer<i>.<stat>` records)."""
    logged = [r for r in history if "agg/layer0.sparsity" in r]
    if not logged:
        return False
    layers = sorted({int(k.split(".")[0].removeprefix("agg/layer")) for k in logged[-1] if k.startswith("agg/layer")})
    colours = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, stat, label in ((axes[0], "sparsity", "ISTA output: fraction of zeros"),
                            (axes[1], "rate_heads", "coding rate per head subspace (nats)")):
        for i in layers:
            ax.plot([r["step"] for r in logged], [r[f"agg/layer{i}.{stat}"] for r in logged],
                    color=colours(i / max(1, len(layers) - 1)), label=f"layer {i}")
        ax.set(xlabel="step", ylabel=label, title=f"{label}, train batches")
    axes[1].legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_run(run_dir: Path, results: dict[str, Any], history: list[dict[str, Any]], m_vals: list[int],
             action_names: list[str], spectra: dict[str, dict[str, dict[str, Any]]]) -> list[Path]:
    """Write RUN/plots/{curves,acc_vs_mval,r2_per_dim,health,spectra}.png (and layers.png, layers_train.png for
    CRATE: per layer at eval, trained vs untrained, and over training); returns the paths.

    spectra: {"eval" | "init": {"z" | "z_AGG": subspace_metrics(...)}}.
    """
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    paths = []
    if history:
        _curves(history, out / "curves.png", results.get("eval.chance"))
        paths.append(out / "curves.png")
    if _layer_curves(history, out / "layers_train.png"):
        paths.append(out / "layers_train.png")
    _acc_vs_mval(results, m_vals, out / "acc_vs_mval.png")
    _r2_per_dim(results, action_names, out / "r2_per_dim.png")
    _health(results, len(spectra["eval"]["z"]["spectrum_eq"]), out / "health.png")
    _spectra(spectra, out / "spectra.png")
    if _layer_stats(results, out / "layers.png"):
        paths.append(out / "layers.png")
    return paths + [out / name for name in ("acc_vs_mval.png", "r2_per_dim.png", "health.png", "spectra.png")]


def plot_comparison(values: dict[str, dict[str, list[float]]], metrics: list[str], path: Path,
                    differences: dict[str, list[float]] | None = None) -> Path:
    """One panel per metric: every run as a dot, each group's mean ± std as a bar-free error bar; with
    `differences` (two groups), beside each metric the difference of means `lab compare` reports
    (second − first) as a diamond, the per-seed differences as dots when the groups share seeds, and
    zero — no difference — as the control line.

    values: {group: {metric: [one value per run]}}; differences: {metric: [per-seed second − first]}
    (empty when the seeds do not pair). Dots rather than bars: metrics such as R² ≈ 0.95 differ in the
    second decimal, which bars from zero would hide and bars from elsewhere would exaggerate.
    """
    groups = list(values)
    per_metric = 2 if differences is not None else 1
    cols = min(4, len(metrics) * per_metric)
    cols -= cols % per_metric
    rows = -(-len(metrics) * per_metric // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    panels = list(axes.flat)
    for index, metric in enumerate(metrics):
        ax = panels[index * per_metric]
        for i, group in enumerate(groups):
            ys = values[group][metric]
            if not ys:
                continue
            offsets = [(j - (len(ys) - 1) / 2) * 0.06 for j in range(len(ys))]
            ax.plot([i + 0.18 + o for o in offsets], ys, "o", color=f"C{i}", ms=4, alpha=0.6)
            std = [statistics.stdev(ys)] if len(ys) > 1 else None  # sample std, as lab compare's table
            ax.errorbar([i], [statistics.fmean(ys)], yerr=std, fmt="D", color=f"C{i}", ms=7, capsize=5)
        ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(groups) - 0.5)
        ax.margins(y=0.25)
        ax.set_title(metric.removeprefix("eval."), fontsize=9)
        ax.set(xlabel="group", ylabel=metric)
        ax.grid(alpha=0.3, axis="y")
        if differences is not None:
            _difference_panel(panels[index * per_metric + 1], values, groups, metric, differences.get(metric, []))
    for ax in panels[len(metrics) * per_metric:]:
        ax.axis("off")
    n = {g: max(len(v) for v in values[g].values()) for g in groups}
    fig.suptitle("mean ± std over seeds (diamonds), each run (dots); " + ", ".join(f"{g}: n={k}" for g, k in n.items()),
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _difference_panel(ax: plt.Axes, values: dict[str, dict[str, list[float]]], groups: list[str], metric: str,
                      paired: list[float]) -> None:
    """The difference of the two groups' means (the number `lab compare` reports), per-seed differences."""
    a, b = values[groups[0]][metric], values[groups[1]][metric]
    label = f"{groups[1]} − {groups[0]}"
    if a and b:
        ax.plot([0], [statistics.fmean(b) - statistics.fmean(a)], "D", color="black", ms=8, label="difference of means")
    if paired:
        offsets = [(j - (len(paired) - 1) / 2) * 0.04 for j in range(len(paired))]
        ax.plot([0.15 + o for o in offsets], paired, "o", color="C2", ms=4, alpha=0.7, label="per seed")
    ax.axhline(0, color="red", ls=":", label="no difference")
    ax.set_xticks([0], [label], fontsize=8)
    ax.set_xlim(-0.5, 0.5)
    ax.margins(y=0.3)
    ax.set(xlabel="groups compared", ylabel=f"Δ {metric}", title=f"difference: {label}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3, axis="y")


def seeds_and_means(ax: plt.Axes, xs: list[float], seed_values: list[list[float]],
                    intervals: list[tuple[float, float]], color: str, label: str) -> None:
    """A series over budgets: at each x every seed's value as a dot and the mean with its interval.

    xs: one position per budget; seed_values: per budget, one value per seed; intervals: per budget, the
    (low, high) confidence interval drawn around the mean (its level belongs in `label`)."""
    means = [statistics.fmean(v) for v in seed_values]
    for x, values in zip(xs, seed_values, strict=True):
        ax.scatter([x] * len(values), values, s=10, color=color, alpha=0.45, zorder=2)
    err = [[m - low for m, (low, _) in zip(means, intervals)], [high - m for m, (_, high) in zip(means, intervals)]]
    ax.errorbar(xs, means, yerr=err, marker="D", color=color, capsize=3, label=label, zorder=3)


def steps_axis(ax: plt.Axes, steps: list[int], label: str = "training steps (batch 64)") -> None:
    """A log2 x axis ticked at exactly the training budgets run."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.minorticks_off()
    ax.set_xlabel(label)
