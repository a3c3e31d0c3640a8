"""The learning curve: training steps → gain of the encoder and of z_AGG over the fair twin.

Reads ARM=RUNS_DIR pairs; each RUNS_DIR holds lc-e<EPOCHS>-s<SEED>/results.json (written by run.sh).
Runs are grouped by budget (`lab.compare`: the name without its seed suffix). For each arm, budget
and metric it reports the mean gain over seeds with its sample std, its 95 % confidence interval
(Student t, n − 1 degrees of freedom) and the one-sided p-value of a one-sample t-test that the
gain is > 0. A gain is already paired: trained minus its own twin (same seed, initial weights,
views and probes). Writes table.md, curve.json and learning-curve.png next to this file.

Usage: python experiments/learning-curve/analyse.py ARM=RUNS_DIR [ARM=RUNS_DIR …]
       (default: full=runs/learning-curve)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

from lab.compare import load_run, summarize  # noqa: E402
from lab.eval.plots import seeds_and_means, steps_axis  # noqa: E402

HERE = Path(__file__).resolve().parent
METRICS = {"gain.linacc_enc": "encoder z (view 1) → class", "gain.linacc_agg": "z_AGG (M_tr = 3) → class",
           "gain.r2_equi": "[z1; z2] → action (R²)"}


def budget_rows(arm: str, runs_dir: Path) -> list[dict]:
    """One row per budget of one arm (ascending steps): steps, n, and per metric mean, std, 95 % CI and p."""
    runs = [load_run(p) for p in sorted(runs_dir.glob("lc-e*-s*")) if (p / "results.json").is_file()]
    summary = summarize(runs, [*METRICS, "train.step", "provenance.train_wall_s"])
    rows = []
    for group, row in summary.items():
        out = {"arm": arm, "budget": group, "epochs": int(re.search(r"e(\d+)$", group).group(1)),
               "steps": int(row["train.step"].values[0]), "n": len(row["train.step"].values),
               "train_wall_s": row["provenance.train_wall_s"].mean}
        for metric in METRICS:
            values = row[metric].values
            p_greater = stats.ttest_1samp(values, 0.0, alternative="greater").pvalue
            low, high = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)  # two-sided interval
            out[metric] = {"mean": row[metric].mean, "std": row[metric].std, "ci95": [float(low), float(high)],
                           "p_greater": float(p_greater), "values": values}
        rows.append(out)
    return sorted(rows, key=lambda r: r["steps"])


def markdown(rows: list[dict]) -> str:
    head = ["arm", "steps (epochs)", "n", "train s / seed"] + [f"`{m}` mean ± std [95 % CI], p(>0)" for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["arm"], f"{r['steps']} ({r['epochs']})", str(r["n"]), f"{r['train_wall_s']:.0f}"]
        for m in METRICS:
            s = r[m]
            cells.append(f"{s['mean']:+.3f} ± {s['std']:.3f} [{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}], "
                         f"p = {s['p_greater']:.2g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(arms: dict[str, list[dict]], path: Path) -> None:
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.4 * len(METRICS), 3.8), sharex=True)
    all_steps = sorted({r["steps"] for rows in arms.values() for r in rows})
    for ax, (metric, title) in zip(axes, METRICS.items(), strict=True):
        for i, (arm, rows) in enumerate(arms.items()):
            shift = 1.06 ** (i - (len(arms) - 1) / 2)  # arms side by side on the log axis
            seeds_and_means(ax, [r["steps"] * shift for r in rows], [r[metric]["values"] for r in rows],
                            [r[metric]["ci95"] for r in rows], f"C{i}", f"{arm}: mean, 95 % CI")
        ax.axhline(0.0, color="k", lw=1, ls="--", label="no gain over the twin")
        steps_axis(ax, all_steps)
        ax.set_ylabel(f"{metric}: trained − twin")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("quick.yaml with train.epochs varied; each dot a seed; twin = the fair twin (BN statistics "
                 "re-estimated), except in the old-control arm (BN's initial statistics)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(pairs: list[str]) -> None:
    arms = {}
    for pair in pairs or ["full=runs/learning-curve"]:
        arm, _, runs_dir = pair.partition("=")
        rows = budget_rows(arm, Path(runs_dir))
        if not rows:
            raise SystemExit(f"no results under {runs_dir}/lc-e*-s*: run experiments/learning-curve/run.sh first")
        arms[arm] = rows
    table = markdown([r for rows in arms.values() for r in rows])
    (HERE / "table.md").write_text(table)
    (HERE / "curve.json").write_text(json.dumps(arms, indent=2) + "\n")
    plot(arms, HERE / "learning-curve.png")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
