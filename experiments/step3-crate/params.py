"""The equal-parameter rule of step 3: an aggregator variant is compared with the transformer
aggregator only at a depth whose parameter count is within `--tolerance` (default 15%) of the
transformer's on the same base config. Prints the counts; exit 0 when every variant fits.

    python experiments/step3-crate/params.py
"""

from __future__ import annotations

import argparse
import sys

from lab.build import build_seqjepa
from lab.config import load_config

BASE = "experiments/step2-teacherless/base.yaml"
# the depths variants.sh uses; a CRATE layer has ~3·d² weights, a CRATE-α layer ~10·d², a transformer layer ~12·d²
VARIANTS = {"crate": ["model.aggregator.kind=crate", "model.aggregator.layers=12"],
            "crate_alpha": ["model.aggregator.kind=crate_alpha", "model.aggregator.layers=4"]}


def aggregator_params(overrides: list[str]) -> int:
    cfg = load_config(BASE, overrides)
    return sum(p.numel() for p in build_seqjepa(cfg.model, action_in_dim=4).aggregator.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tolerance", type=float, default=0.15)
    args = parser.parse_args()
    reference = aggregator_params([])
    print(f"transformer (3 layers): {reference:,} parameters")
    ok = True
    for name, overrides in VARIANTS.items():
        count = aggregator_params(overrides)
        ratio = count / reference
        fits = abs(ratio - 1) <= args.tolerance
        ok &= fits
        print(f"{name} ({overrides[1].split('=')[1]} layers): {count:,} parameters, {ratio:.3f}× → {'ok' if fits else 'not equal'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
