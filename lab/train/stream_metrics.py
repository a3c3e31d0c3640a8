"""Continual-learning metrics over the task × task accuracy matrix, and their plots.

acc[t][j] is the probe accuracy on task j after training on tasks 0..t−1: row 0 is the untrained
network (the twin every gain is measured against), row t (1 ≤ t ≤ T) follows task t−1.
- average accuracy A = mean_j acc[T][j];
- forgetting of task j < T−1: F_j = max_{j+1 ≤ t < T} acc[t][j] − acc[T][j] (best accuracy after it
  was learnt, minus final; Chaudhry et al. 2018), and the mean over those tasks;
- gain = A − mean_j acc[0][j], the learning over the untrained network.

Forgetting as best − final is biased upward by probe noise: a maximum over noisy evaluations
exceeds a single one even when nothing changed. `probe_noise` measures that floor on the final
network itself: re-evaluated with other probe seeds (other eval subsets, views and BN sequences),
the same statistic — for task j the best of T−1−j re-evaluations minus the final one — is what
forgetting reads when nothing was forgotten.
"""

from __future__ import annotations

import statistics
from pathlib import Path


def continual_summary(acc: list[list[float]]) -> dict[str, float]:
    """Flat results from the (T+1) × T matrix (row 0 = untrained)."""
    tasks = len(acc[0])
    if len(acc) != tasks + 1 or any(len(row) != tasks for row in acc):
        raise ValueError(f"expected a ({tasks}+1) × {tasks} matrix, rows {[len(r) for r in acc]}")
    final, init = acc[-1], acc[0]
    out = {"eval.avg_acc": sum(final) / tasks, "init.avg_acc": sum(init) / tasks}
    out["gain.avg_acc"] = out["eval.avg_acc"] - out["init.avg_acc"]
    forgetting = []
    for j in range(tasks - 1):
        best = max(acc[t][j] for t in range(j + 1, tasks))
        forgetting.append(best - final[j])
        out[f"eval.forgetting@task{j}"] = forgetting[-1]
    out["eval.forgetting"] = sum(forgetting) / len(forgetting) if forgetting else 0.0
    for j in range(tasks):
        out[f"eval.acc@task{j}"] = final[j]
    return out


def probe_noise(final: list[float], reevals: list[list[float]]) -> dict[str, float]:
    """The forgetting statistic on re-evaluations of one network: final (T,) is its evaluation in
    the stream, reevals (K, T) the same network with other probe seeds. Task j < T−1 takes the best
    of the first min(K, T−1−j) re-evaluations minus final[j]; `noise.forgetting` is their mean, and
    `noise.acc_std` the mean over tasks of the sample std of the K+1 evaluations."""
    tasks = len(final)
    if not reevals or any(len(row) != tasks for row in reevals):
        raise ValueError(f"expected at least one re-evaluation of {tasks} tasks, got rows {[len(r) for r in reevals]}")
    floor = [max(row[j] for row in reevals[: max(1, tasks - 1 - j)]) - final[j] for j in range(tasks - 1)]
    rows = [final, *reevals]
    spread = [statistics.stdev(row[j] for row in rows) for j in range(tasks)]
    return {"noise.forgetting": sum(floor) / len(floor) if floor else 0.0, "noise.acc_std": sum(spread) / tasks,
            "noise.evals": len(reevals)}


def plot_continual(acc: list[list[float]], curve: list[dict], path: Path, title: str, num_classes: int) -> None:
    """Left: probe accuracy against samples seen (task boundaries dashed) with its controls — the untrained
    twin (the curve's first point) and chance over all classes. Right: the task × task matrix, whose row 0
    (the untrained twin) is the control of every other row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    xs = [p["seen"] for p in curve]
    for key, label in (("acc_all", "all classes"), ("acc_seen", "classes seen so far")):
        left.plot(xs, [float("nan") if p[key] is None else p[key] for p in curve], "o-", label=label)
    left.axhline(curve[0]["acc_all"], color="C0", ls="--", lw=1, label="all classes, untrained twin (control)")
    left.axhline(1 / num_classes, color="red", ls=":", lw=1, label=f"chance, all classes (1/{num_classes})")
    for p in curve:
        if p.get("task_end"):
            left.axvline(p["seen"], color="grey", ls="--", lw=0.8)
    left.set_xlabel("samples seen (dashed: task ends)")
    left.set_ylabel("linear-probe accuracy (z_AGG)")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    im = right.imshow(acc, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for t, row in enumerate(acc):
        for j, v in enumerate(row):
            right.text(j, t, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
    right.set_xticks(range(len(acc[0])), [f"task {j}" for j in range(len(acc[0]))])
    right.set_yticks(range(len(acc)), ["untrained"] + [f"after task {t}" for t in range(len(acc) - 1)])
    right.set_xlabel("task probed (within-task linear probe on z_AGG)")
    right.set_ylabel("network evaluated")
    right.set_title("accuracy on each task; row 0 is the control")
    fig.colorbar(im, ax=right, label="within-task accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
