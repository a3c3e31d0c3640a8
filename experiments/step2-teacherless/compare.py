"""Compare a variant with a control over seeds: exit 0 when the variant's mean is no worse than
the control's mean minus `--spread` pooled seed standard deviations, else 1. The pooled std is
sqrt((s_variant² + s_control²) / 2): the noise of a difference of two seed means, which a
two- or three-seed std of the control alone underestimates.

    python experiments/step2-teacherless/compare.py runs/expB runs/baseline gain.linacc_agg
    python experiments/step2-teacherless/compare.py runs/step1-quick runs/step1-noact gain.r2_equi --spread -1
reads runs/expB-s{0,1,2}/results.json and runs/baseline-s{0,1,2}/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def seed_values(prefix: str, key: str, seeds: list[int]) -> list[float]:
    values = []
    for seed in seeds:
        path = Path(f"{prefix}-s{seed}/results.json")
        if not path.is_file():
            sys.exit(f"missing {path}: train and evaluate that run first")
        results = json.loads(path.read_text())
        if key not in results:
            sys.exit(f"{path} has no {key!r}")
        values.append(float(results[key]))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", help="run prefix of the variant, e.g. runs/expB")
    parser.add_argument("control", help="run prefix of the control, e.g. runs/baseline")
    parser.add_argument("key", help="results.json key, e.g. gain.linacc_agg")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--spread", type=float, default=2.0, help="allowed shortfall in pooled standard deviations (0: mean ≥ control mean; "
                        "negative: the variant must exceed the control by that many, e.g. -1)")
    args = parser.parse_args()
    var, ctl = seed_values(args.variant, args.key, args.seeds), seed_values(args.control, args.key, args.seeds)
    v_mean, c_mean = statistics.mean(var), statistics.mean(ctl)
    v_std, c_std = (statistics.stdev(x) if len(x) > 1 else 0.0 for x in (var, ctl))
    pooled = ((v_std**2 + c_std**2) / 2) ** 0.5
    floor = c_mean - args.spread * pooled
    ok = v_mean >= floor
    print(f"{args.key}: {args.variant} {v_mean:.4f} (seeds {', '.join(f'{x:.4f}' for x in var)}) vs "
          f"{args.control} {c_mean:.4f} ± {c_std:.4f}; pooled std {pooled:.4f}; needs ≥ {floor:.4f} → {'pass' if ok else 'fail'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
