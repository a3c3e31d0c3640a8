"""The split experiment (README.md): the pre-registered tests H1–H3, a table, split.json and split.png.

Reads RUNS_DIR/split-e<EPOCHS>-s<SEED>/results.json (written by run.sh). Per run, the two split figures
(positive = the paper's direction: z carries the pose, z_AGG the class):
- pose split  = r2_equi − leak_r2      (= inv_gap: action from [z1; z2] minus from one-view aggregates)
- class split = linacc_agg − leak_linacc (class from z_AGG at M_tr minus from single views' z)
for the trained run (eval.*) and its fair untrained twin (init.*, the control). Tests, one-sided t-tests
over seeds (scipy): H1/H2 trained split > 0 at the longest budget (one-sample); H3 longest minus
shortest budget > 0, paired by seed.

Usage: python experiments/split/analyse.py [RUNS_DIR]   (default runs/split)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from lab.compare import CompareError, Run, load_run  # noqa: E402
from lab.eval.plots import seeds_and_means, steps_axis  # noqa: E402
from lab.rundir.results import write_results_file  # noqa: E402

HERE = Path(__file__).resolve().parent
STEPS_PER_EPOCH = 16  # base.yaml: 1024 training samples, batch 64
SPLITS = {"pose": ("r2_equi", "leak_r2"), "class": ("linacc_agg", "leak_linacc")}
TITLES = {"pose": "pose: action R², [z1; z2] − one-view z_AGG",
          "class": "class: accuracy, z_AGG (M_tr = 3) − one view's z"}
PARTS = ["r2_equi", "leak_r2", "linacc_agg", "leak_linacc", "linacc_enc"]


def split_value(run: Run, split: str, prefix: str) -> float:
    """One split figure of one run: right representation minus the other ('eval' trained, 'init' twin)."""
    right, wrong = SPLITS[split]
    return run.values[f"{prefix}.{right}"] - run.values[f"{prefix}.{wrong}"]


def load(runs_dir: Path) -> dict[int, dict[int, Run]]:
    """{epochs: {seed: run}} of every evaluated split run under runs_dir."""
    out: dict[int, dict[int, Run]] = {}
    for path in sorted(runs_dir.glob("split-e*-s*")):
        if (path / "results.json").is_file():
            epochs, seed = map(int, re.fullmatch(r"split-e(\d+)-s(\d+)", path.name).groups())
            out.setdefault(epochs, {})[seed] = load_run(path)
    if len(out) < 2:
        raise SystemExit(f"need two budgets under {runs_dir}/split-e*-s*, found {sorted(out)}: run run.sh first")
    return dict(sorted(out.items()))


def one_sided(values: list[float]) -> dict:
    """Mean, sample std, 90 % two-sided interval (the one-sided test's bound) and p of mean > 0."""
    test = stats.ttest_1samp(values, 0.0, alternative="greater")
    low, high = stats.ttest_1samp(values, 0.0).confidence_interval(0.90)
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)), "ci90": [float(low), float(high)],
            "p": float(test.pvalue), "n": len(values), "values": [float(v) for v in values]}


def analyse(budgets: dict[int, dict[int, Run]]) -> dict:
    short, long = min(budgets), max(budgets)
    seeds = sorted(budgets[short].keys() & budgets[long].keys())
    rows = {}
    for epochs, runs in budgets.items():
        row = {"steps": epochs * STEPS_PER_EPOCH, "seeds": sorted(runs)}
        for split in SPLITS:
            for prefix in ("eval", "init"):
                row[f"{prefix}.{split}"] = one_sided([split_value(r, split, prefix) for r in runs.values()])
        for part in PARTS:
            for prefix in ("eval", "init"):
                values = [r.values[f"{prefix}.{part}"] for r in runs.values()]
                row[f"{prefix}.{part}"] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))}
        rows[epochs] = row
    tests = {
        "H1 pose split > 0 at the longest budget": rows[long]["eval.pose"],
        "H2 class split > 0 at the longest budget": rows[long]["eval.class"],
    }
    for tag, split in (("H3a", "pose"), ("H3b", "class")):
        tests[f"{tag} {split} split: longest − shortest budget > 0 (paired by seed)"] = one_sided(
            [split_value(budgets[long][s], split, "eval") - split_value(budgets[short][s], split, "eval") for s in seeds])
    return {"budgets": rows, "tests": tests, "paired_seeds": seeds}


def markdown(result: dict) -> str:
    lines = ["| steps | n | " + " | ".join(f"`{p}` trained (twin)" for p in PARTS)
             + " | pose split trained (twin) | class split trained (twin) |", "|" + "---|" * (4 + len(PARTS))]
    for row in result["budgets"].values():
        cells = [str(row["steps"]), str(row["eval.pose"]["n"])]
        cells += [f"{row[f'eval.{p}']['mean']:.3f} ± {row[f'eval.{p}']['std']:.3f} ({row[f'init.{p}']['mean']:.3f})"
                  for p in PARTS]
        cells += [f"{row[f'eval.{s}']['mean']:+.3f} ± {row[f'eval.{s}']['std']:.3f} ({row[f'init.{s}']['mean']:+.3f})"
                  for s in SPLITS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| test | mean [90 % CI] | p (one-sided t) | verdict at α = 0.05 |", "|---|---|---|---|"]
    for name, t in result["tests"].items():
        verdict = "holds" if t["p"] < 0.05 else "not shown"
        lines.append(f"| {name} | {t['mean']:+.3f} [{t['ci90'][0]:+.3f}, {t['ci90'][1]:+.3f}] | {t['p']:.2g} | {verdict} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    rows = list(result["budgets"].values())
    steps = [r["steps"] for r in rows]
    fig, axes = plt.subplots(1, len(SPLITS), figsize=(9, 3.8), sharex=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        right, wrong = SPLITS[split]
        for i, (prefix, label) in enumerate((("eval", "trained"), ("init", "untrained twin (control)"))):
            seeds_and_means(ax, [s * 1.04 ** (i - 0.5) for s in steps], [r[f"{prefix}.{split}"]["values"] for r in rows],
                            [r[f"{prefix}.{split}"]["ci90"] for r in rows], f"C{i}", f"{label}: mean, 90 % CI")
        ax.axhline(0.0, color="k", lw=1, ls="--", label="no split (paper's direction is > 0)")
        steps_axis(ax, steps)
        ax.set_ylabel(f"{right} − {wrong}")
        ax.set_title(TITLES[split], fontsize=10)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("seq-JEPA baseline (step-2 base.yaml), seeds paired across budgets; each dot a seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> None:
    try:
        result = analyse(load(Path(argv[0] if argv else "runs/split")))
    except CompareError as e:  # an unreadable results.json: say which, no traceback
        raise SystemExit(str(e)) from None
    except KeyError as e:
        raise SystemExit(f"a split run's results.json lacks {e}: evaluate it with this lab's `lab eval RUN`") from None
    write_results_file(HERE / "split.json", result)
    plot(result, HERE / "split.png")
    print(table := markdown(result))
    (HERE / "table.md").write_text(table)


if __name__ == "__main__":
    main(sys.argv[1:])
