"""How often a gate passes noise, and how often it passes a real effect: simulated experiments, fixed seeds.

One simulated experiment is n seeds of a treatment `a` and a control `b`. Seed-to-seed noise has
standard deviation 1, and `effect` is the true mean difference a - b in units of it:

- paired: a_s = b_s + effect + e_s, so the per-seed differences that the paired t-test sees have
  standard deviation 1 (pairing removes what both runs of one seed share);
- unpaired: a_s = effect + e_as and b_s = e_bs, independent runs, each with standard deviation 1;
- the `mean-std` gate (`checks.aggregate`) reads the same differences as the paired test and
  passes when their mean minus their standard deviation is above 0, as the Δ gates of this
  repository's plan do ("gain over the untrained twin >= 0").

Each experiment is decided by the judge's own code (`stats.t_tests` and `stats.shown`, `checks.aggregate`),
so the rates measured are those of the checks a plan runs. At the null (effect 0 for `greater`,
-margin for `noninferior`, +margin for `equivalent`) the share of passes is the false-pass rate;
elsewhere it is the power. `scripts/calibration.py` prints the table in docs/statistics.md;
tests/harness/test_compare_calibration.py holds these rates to alpha.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.judge.checks import aggregate
from harness.judge.stats import shown, t_tests
from harness.plan.prd import Test

Noise = Literal["normal", "heavy", "skewed", "skewed-left"]
# Seed-to-seed noise with mean 0 and standard deviation 1: normal; heavy-tailed (Student's t with 3
# degrees of freedom, whose variance is 3); skewed (an exponential with mean 1, shifted to mean 0: a
# long tail of lucky seeds) and its mirror image (a long tail of bad seeds).
NOISE: dict[str, Callable[[np.random.Generator, tuple[int, int]], np.ndarray]] = {
    "normal": lambda rng, shape: rng.normal(0.0, 1.0, shape),
    "heavy": lambda rng, shape: rng.standard_t(3, shape) / math.sqrt(3.0),
    "skewed": lambda rng, shape: rng.exponential(1.0, shape) - 1.0,
    "skewed-left": lambda rng, shape: 1.0 - rng.exponential(1.0, shape),
}


@dataclass(frozen=True)
class Rate:
    """How many of `trials` simulated experiments passed."""

    passes: int
    trials: int

    @property
    def rate(self) -> float:
        return self.passes / self.trials

    @property
    def se(self) -> float:
        """Binomial standard error of `rate`: sqrt(p (1 - p) / trials)."""
        return math.sqrt(self.rate * (1 - self.rate) / self.trials)


def comparison_rate(n: int, effect: float, *, paired: bool, claim: Test = "greater", alpha: float = 0.05,
                    margin: float | None = None, noise: Noise = "normal", trials: int, seed: int) -> Rate:
    """The share of `trials` experiments of `n` seeds per side with true difference `effect` that a `compare`
    check with this `claim` passes (all experiments tested at once: `stats.t_tests` on a batch)."""
    rng, draw = np.random.default_rng(seed), NOISE[noise]
    b = draw(rng, (trials, n))  # one row per experiment, one column per seed
    a = (b if paired else 0.0) + effect + draw(rng, (trials, n))
    p_value = t_tests(a, b, paired=paired, claim=claim, alpha=alpha, margin=margin).p_value
    return Rate(int(np.sum(shown(p_value, alpha))), trials)


def mean_std_rate(n: int, effect: float, *, noise: Noise = "normal", trials: int, seed: int) -> Rate:
    """The share of `trials` experiments whose `n` per-seed differences pass a seeded metric gate
    `"agg": "mean-std"`, `"op": ">"`, `"value": 0` (true mean difference `effect`)."""
    rng, draw = np.random.default_rng(seed), NOISE[noise]
    differences = effect + draw(rng, (trials, n))
    return Rate(sum(aggregate(list(row), "mean-std")[2] > 0 for row in differences), trials)


def paired_t_power(n: int, effect: float, alpha: float = 0.05) -> float:
    """The exact power of the one-sided paired t-test with normal noise: P(T > t_{1-alpha, n-1}) for T a
    noncentral t with n - 1 degrees of freedom and noncentrality effect * sqrt(n)."""
    from scipy import stats

    return float(stats.nct.sf(stats.t.ppf(1 - alpha, n - 1), n - 1, effect * math.sqrt(n)))


def mean_std_false_pass(n: int) -> float:
    """The exact false-pass rate of `mean - std > 0` on n normal values of mean 0: P(t_{n-1} > sqrt(n)),
    since mean - std > 0 exactly when the one-sample t statistic mean / (std / sqrt(n)) exceeds sqrt(n)."""
    from scipy import stats

    return float(stats.t.sf(math.sqrt(n), n - 1))


def bootstrap_rate(n: int, effect: float, *, alpha: float = 0.05, trials: int, seed: int) -> Rate:
    """The share of `trials` paired experiments (normal noise) that a percentile bootstrap would pass: the lower
    bound of the (1 - 2 alpha) bootstrap interval of the mean difference above 0. Not a gate ralph offers: the
    measurement behind choosing the t-test (judge/stats.py)."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    d = effect + rng.normal(0.0, 1.0, (trials, n))
    interval = stats.bootstrap((d,), np.mean, confidence_level=1 - 2 * alpha, method="percentile",
                               n_resamples=999, axis=-1, rng=rng).confidence_interval
    return Rate(int(np.sum(interval.low > 0)), trials)
