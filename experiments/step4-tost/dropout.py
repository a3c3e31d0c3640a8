"""ToST trained with dropout 0.1 against dropout 0 (README, "ToST's dropout"): paired two-sided t-tests.

Reads RUNS/step4-tost-s<seed> (dropout 0, S4-TOST-LEARNS's runs) and RUNS/step4-tost-drop-s<seed>
(dropout 0.1) for seeds 20–24; per metric the per-seed difference (0.1 − 0), its mean, 90 % interval and
two-sided p (scipy). Writes dropout.md next to this file and prints it.

Usage: python experiments/step4-tost/dropout.py [RUNS]   (default runs)
"""

from __future__ import annotations

import sys
from pathlib import Path

from scipy import stats

from lab.compare import CompareError, load_run, paired_differences

HERE = Path(__file__).resolve().parent
SEEDS = range(20, 25)
METRICS = ["gain.linacc_enc", "gain.r2_equi", "gain.linacc_agg"]


def main(argv: list[str]) -> None:
    runs_dir = Path(argv[0] if argv else "runs")
    try:
        runs = [load_run(runs_dir / f"{name}-s{seed}") for name in ("step4-tost", "step4-tost-drop") for seed in SEEDS]
    except CompareError as e:  # a missing or unreadable run: say which, no traceback
        raise SystemExit(f"{e} (README: train and evaluate both arms first)") from None
    diffs = paired_differences(runs, ["step4-tost", "step4-tost-drop"], METRICS)
    lines = ["| metric | dropout 0.1 − dropout 0 (per seed 20–24) | mean [90 % CI] | p (paired, two-sided) |",
             "|---|---|---|---|"]
    for metric, values in diffs.items():
        test = stats.ttest_1samp(values, 0.0)
        low, high = test.confidence_interval(0.90)
        cells = ", ".join(f"{v:+.3f}" for v in values)
        lines.append(f"| `{metric}` | {cells} | {sum(values) / len(values):+.3f} [{low:+.3f}, {high:+.3f}] | {test.pvalue:.2g} |")
    table = "\n".join(lines) + "\n"
    (HERE / "dropout.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
