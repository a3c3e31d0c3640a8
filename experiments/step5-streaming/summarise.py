"""Mean ± sample std per arm of the step-5 runs, as a markdown table (report figures; the gates are ralph's).

    python experiments/step5-streaming/summarise.py RUNS_DIR [--seeds 10 11 12 13 14] [--arms none reservoir iid]

Reads RUNS_DIR/step5-<arm>-s<seed>/stream.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

KEYS = ["eval.forgetting", "noise.forgetting", "noise.acc_std", "eval.avg_acc", "init.avg_acc", "gain.avg_acc",
        "eval.acc_all", "init.acc_all", "gain.acc_all", "provenance.train_wall_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    parser.add_argument("--arms", nargs="+", default=["none", "reservoir", "iid"])
    args = parser.parse_args()
    print("| arm | n | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for arm in args.arms:
        runs = [json.loads((args.runs / f"step5-{arm}-s{s}" / "stream.json").read_text()) for s in args.seeds]
        cells = []
        for key in KEYS:
            values = [r[key] for r in runs]
            cells.append(f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}")
        print(f"| {arm} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
