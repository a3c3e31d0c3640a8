"""The step-2/3 comparison table from runs/<variant>-s<seed>/results.json: mean ± std over the seeds found.

    python experiments/step2-teacherless/table.py RUNS_DIR baseline expA expB ... > table.md
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

COLUMNS = [("gain.linacc_agg", "Δ linacc_agg"), ("gain.r2_equi", "Δ r2_equi"), ("eval.inv_gap", "inv. gap"),
           ("eval.rankme_enc", "RankMe z"), ("eval.rankme_agg", "RankMe z_AGG"), ("eval.cos_enc", "mean cos z"),
           ("eval.rank_eq_eff", "rank_eq_eff"), ("eval.rank_inv_eff", "rank_inv_eff"), ("eval.var_eq_frac", "view var. share"),
           ("eval.subspace_overlap", "overlap"), ("eval.collapsed", "collapsed"), ("provenance.train_wall_s", "train s")]


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    runs, variants = Path(sys.argv[1]), sys.argv[2:]
    print("| variant | seeds | " + " | ".join(label for _, label in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for variant in variants:
        results = [json.loads(p.read_text()) for p in sorted(runs.glob(f"{variant}-s*/results.json"))]
        if not results:
            continue
        cells = [cell([float(r[key]) for r in results]) for key, _ in COLUMNS]
        print(f"| {variant} | {len(results)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
