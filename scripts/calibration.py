"""Print the calibration table of docs/statistics.md: how often each gate passes noise, and a real effect.

    .venv/bin/python scripts/calibration.py [--trials 4000] [--seed 0]

Each cell is the share of `--trials` simulated experiments (harness/judge/calibration.py: n seeds per
side, seed-to-seed noise of standard deviation 1, the true difference `effect` in units of it) that
the judge's own code passes, with its binomial standard error. Every cell draws from its own fixed
seed, so a run with the same arguments prints the same table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from harness.judge.calibration import (
    Rate,
    bootstrap_rate,
    comparison_rate,
    mean_std_false_pass,
    mean_std_rate,
    paired_t_power,
)

SIZES = (3, 5, 10)
EFFECTS = (1.0, 2.0)  # the two effect sizes of the power rows, in seed-to-seed standard deviations
MARGIN = 1.0  # noninferiority / equivalence margin of the boundary rows, in the same units

# (row label, what the rate is, the simulation for n seeds, an exact value for n or None)
Row = tuple[str, str, Callable[[int, int, int], Rate], Callable[[int], float] | None]


def rows() -> list[Row]:
    out: list[Row] = [
        ("`compare` paired t, `greater`, effect 0", "false pass",
         lambda n, t, s: comparison_rate(n, 0.0, paired=True, trials=t, seed=s), None),
        *((f"`compare` paired t, `greater`, effect {e:g}", "power",
           lambda n, t, s, e=e: comparison_rate(n, e, paired=True, trials=t, seed=s),
           lambda n, e=e: paired_t_power(n, e)) for e in EFFECTS),
        ("`compare` Welch t, `greater`, effect 0", "false pass",
         lambda n, t, s: comparison_rate(n, 0.0, paired=False, trials=t, seed=s), None),
        *((f"`compare` Welch t, `greater`, effect {e:g}", "power",
           lambda n, t, s, e=e: comparison_rate(n, e, paired=False, trials=t, seed=s), None) for e in EFFECTS),
        (f"`compare` paired t, `noninferior` margin {MARGIN:g}, effect -{MARGIN:g}", "false pass",
         lambda n, t, s: comparison_rate(n, -MARGIN, paired=True, claim="noninferior", margin=MARGIN, trials=t,
                                         seed=s), None),
        (f"`compare` paired t, `equivalent` margin {MARGIN:g}, effect {MARGIN:g}", "false pass",
         lambda n, t, s: comparison_rate(n, MARGIN, paired=True, claim="equivalent", margin=MARGIN, trials=t,
                                         seed=s), None),
        (f"`compare` paired t, `equivalent` margin {MARGIN:g}, effect 0", "power",
         lambda n, t, s: comparison_rate(n, 0.0, paired=True, claim="equivalent", margin=MARGIN, trials=t,
                                         seed=s), None),
        ("`compare` paired t, `greater`, effect 0, heavy-tailed noise (t, 3 df)", "false pass",
         lambda n, t, s: comparison_rate(n, 0.0, paired=True, noise="heavy", trials=t, seed=s), None),
        ("`compare` paired t, `greater`, effect 0, skewed noise (exponential: lucky seeds)", "false pass",
         lambda n, t, s: comparison_rate(n, 0.0, paired=True, noise="skewed", trials=t, seed=s), None),
        ("`compare` paired t, `greater`, effect 0, skewed noise (mirrored exponential: bad seeds)", "false pass",
         lambda n, t, s: comparison_rate(n, 0.0, paired=True, noise="skewed-left", trials=t, seed=s), None),
        ("`metric` gate `mean-std > 0`, effect 0", "false pass",
         lambda n, t, s: mean_std_rate(n, 0.0, trials=t, seed=s), mean_std_false_pass),
        *((f"`metric` gate `mean-std > 0`, effect {e:g}", "power",
           lambda n, t, s, e=e: mean_std_rate(n, e, trials=t, seed=s), None) for e in EFFECTS),
        ("`metric` gate `mean-std > 0`, effect 0, skewed noise (mirrored exponential: bad seeds)", "false pass",
         lambda n, t, s: mean_std_rate(n, 0.0, noise="skewed-left", trials=t, seed=s), None),
        ("percentile bootstrap 90 % interval > 0 (not offered), effect 0", "false pass",
         lambda n, t, s: bootstrap_rate(n, 0.0, trials=max(t // 4, 100), seed=s), None),
    ]
    return out


def cell(rate: Rate, exact: float | None) -> str:
    shown = f"{rate.rate:.3f} ± {rate.se:.3f}"
    return shown + (f" (exact {exact:.3f})" if exact is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000, help="simulated experiments per cell (the bootstrap "
                        "row uses a quarter: it resamples 999 times per experiment)")
    parser.add_argument("--seed", type=int, default=0, help="first RNG seed; cell k uses seed + k")
    args = parser.parse_args()
    start = time.monotonic()
    print(f"alpha 0.05; {args.trials} simulated experiments per cell (bootstrap: {max(args.trials // 4, 100)}); "
          "rate ± binomial standard error\n")
    print("| gate | rate | " + " | ".join(f"n = {n}" for n in SIZES) + " |")
    print("|---|---|" + "---|" * len(SIZES))
    k = args.seed
    for label, what, simulate, exact in rows():
        cells = []
        for n in SIZES:
            cells.append(cell(simulate(n, args.trials, k), exact(n) if exact else None))
            k += 1
        print(f"| {label} | {what} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
