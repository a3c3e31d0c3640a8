"""The statistics of a `compare` check: a treatment `a` against a control `b` over a few seeds.

Which test, and why (docs/statistics.md has the calibration table):

- paired (`"paired": true`, seed s of a against seed s of b): a one-sample t-test on the per-seed
  differences a_s - b_s (`scipy.stats.ttest_1samp`);
- unpaired: Welch's t-test (`scipy.stats.ttest_ind(equal_var=False)`), which does not assume the
  two groups spread alike;
- `noninferior` shifts the null hypothesis to a - b = -margin; `equivalent` is two one-sided tests
  (TOST) against -margin and +margin, and its p-value is the larger of the two.

With 3 to 10 seeds a t-test is the choice that can both pass and be trusted: an exact permutation
test cannot reach p < 0.05 with 3 pairs (its smallest one-sided p-value is 1/2^3 = 0.125), and
bootstrap intervals are too narrow at such n (they treat the few values seen as the whole
distribution), so they pass noise more often than alpha says. The t-test is exact when seed-to-seed
noise is normal and conservative with heavy tails; its weak side is skew toward bad seeds (a few
much worse runs), where it passes noise about 16 % of the time at 3-5 seeds (docs/statistics.md).

The confidence interval reported is the two-sided (1 - 2 alpha) interval of the mean difference
(90 % at alpha 0.05): its lower bound is above 0 exactly when `greater` passes at alpha, above
-margin exactly when `noninferior` does, and it lies inside (-margin, +margin) exactly when
`equivalent` does, so the interval and the verdict always agree.

scipy is imported inside `t_tests`: the harness's light commands (`ralph status`,
`ralph validate`) never load it; it loads when a comparison is evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from harness.books.records import ComparisonStats
from harness.plan.prd import Test, claim_text

NO_SPREAD = ("with no seed-to-seed variation there is nothing to test (does {seed} reach the runs, e.g. their "
             "random seed?)")


class NothingToTest(ValueError):
    """The values cannot be tested: they do not vary across seeds, or the test's result is not a finite number."""


class TTests(NamedTuple):
    """What `t_tests` found, one value per experiment (arrays, or scalars for one experiment)."""

    p_value: Any
    ci_low: Any
    ci_high: Any
    diff: Any
    df: Any


def t_tests(a: Any, b: Any, *, paired: bool, claim: Test, alpha: float, margin: float | None) -> TTests:
    """The test of `claim` about the mean difference a - b, along the last axis of `a` and `b` (numpy arrays):
    one experiment, or a batch of them at once (harness/judge/calibration.py simulates thousands).

    Paired samples are aligned: a[..., i] and b[..., i] come from the same seed.
    """
    import numpy as np
    from scipy import stats

    def t_test(null_diff: float, alternative: str):  # type: ignore[no-untyped-def]
        """scipy's t-test of H1 `diff <alternative> null_diff` (diff = the mean of a - b)."""
        if paired:
            return stats.ttest_1samp(a - b, popmean=null_diff, alternative=alternative, axis=-1)
        return stats.ttest_ind(a - null_diff, b, equal_var=False, alternative=alternative, axis=-1)

    if claim == "equivalent":
        assert margin is not None
        p_value = np.maximum(t_test(-margin, "greater").pvalue, t_test(margin, "less").pvalue)
    else:
        shift = -margin if claim == "noninferior" and margin is not None else 0.0
        p_value = t_test(shift, "less" if claim == "less" else "greater").pvalue
    both = t_test(0.0, "two-sided")
    ci = both.confidence_interval(confidence_level=1 - 2 * alpha)
    diff = np.mean(a - b, axis=-1) if paired else np.mean(a, axis=-1) - np.mean(b, axis=-1)
    return TTests(p_value, ci.low, ci.high, diff, both.df)


def shown(p_value: Any, alpha: float) -> Any:
    """The verdict rule: a claim is shown when p < alpha (elementwise on arrays)."""
    return p_value < alpha


def compare_samples(a: Sequence[float], b: Sequence[float], *, paired: bool, claim: Test, alpha: float,
                    margin: float | None = None) -> ComparisonStats:
    """Test `claim` about the mean difference a - b at level `alpha` (`t_tests`) and record the result.

    Paired samples are aligned: a[i] and b[i] come from the same seed. Raises `NothingToTest` when
    the values do not vary (a t statistic would divide by zero) or the result is not finite.
    """
    import numpy as np

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired and len(x) != len(y):
        raise ValueError(f"paired samples need one a and one b per seed, got {len(x)} and {len(y)} values")
    # Values near the float limit overflow: that shows as a spread or a result that is not finite, refused below.
    with np.errstate(all="ignore"):
        if paired and np.ptp(x - y) == 0:
            raise NothingToTest(f"a - b is {float(x[0] - y[0]):g} for every seed: {NO_SPREAD}")
        if not paired and np.ptp(x) == 0 and np.ptp(y) == 0:
            raise NothingToTest(f"a is {float(x[0]):g} and b is {float(y[0]):g} for every seed: {NO_SPREAD}")
        found = TTests(*map(float, t_tests(x, y, paired=paired, claim=claim, alpha=alpha, margin=margin)))
    if not all(math.isfinite(v) for v in found):
        raise NothingToTest(f"the test gave a number that is not finite (p {found.p_value}, interval "
                            f"[{found.ci_low}, {found.ci_high}]): are the values within floating-point range?")
    test = "paired t-test" if paired else "Welch t-test"
    return ComparisonStats(
        test=f"TOST with {test}s" if claim == "equivalent" else test, claim=claim, paired=paired,
        n=len(x) if paired else len(x) + len(y), n_a=len(x), n_b=len(y), mean_a=float(np.mean(x)),
        mean_b=float(np.mean(y)), diff=found.diff, ci=(found.ci_low, found.ci_high), ci_level=1 - 2 * alpha,
        p_value=found.p_value, alpha=alpha, margin=margin, df=found.df,
    )


def passed(result: ComparisonStats) -> bool:
    """The verdict of a recorded comparison (`shown`)."""
    return bool(shown(result.p_value, result.alpha))


def sentence(result: ComparisonStats, quantity: str) -> str:
    """The verdict as a reviewer reads it, e.g. 'eval.r2_equi: a - b = +0.04 (means 0.979 vs 0.939), 90% CI
    [+0.012, +0.068], p = 0.012 < 0.05 by a paired t-test on 5 pairs: a > b is shown'."""
    ok = passed(result)
    sizes = f"{result.n} pairs" if result.paired else f"{result.n_a} + {result.n_b} runs"
    return (f"{quantity}: a - b = {result.diff:+.4g} (means {result.mean_a:.4g} vs {result.mean_b:.4g}), "
            f"{result.ci_level:.0%} CI [{result.ci[0]:+.4g}, {result.ci[1]:+.4g}], p = {result.p_value:.3g} "
            f"{'<' if ok else '>='} {result.alpha:g} by a {result.test} on {sizes}: "
            f"{claim_text(result.claim, result.margin)} is {'shown' if ok else 'not shown'}")
