"""The keep rule: a candidate replaces the incumbent only when a paired test over the same seeds shows it better.

"The mean went up" is not enough: with a few seeds, seed-to-seed noise moves the mean by more than most real
changes do. The rule pairs seed s of the candidate with seed s of the incumbent (the same data order and
initialisation, so the shared part of the noise cancels) and asks the one-sided paired t-test of
`harness.judge.stats` (the `compare` check's test, calibrated in docs/statistics.md) for p < alpha.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from harness.books.records import ComparisonStats
from harness.judge import stats

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Decision:
    """Whether the candidate is kept, with the test's figures: diff = mean(candidate - incumbent), its p."""

    keep: bool
    diff: float
    p_value: float | None
    reason: str
    stats: ComparisonStats | None = None


def decide(candidate: Mapping[int, float], incumbent: Mapping[int, float], *, direction: Direction,
           alpha: float) -> Decision:
    """Keep `candidate` (seed -> metric) over `incumbent` (seed -> metric, the same seeds) when the paired one-sided
    t-test shows it better in `direction` at `alpha`. Values that do not vary across seeds cannot be tested:
    not kept (fails closed)."""
    seeds = sorted(candidate)
    if seeds != sorted(incumbent):
        raise ValueError(f"the keep rule pairs seeds, but the candidate has {seeds} and the incumbent "
                         f"{sorted(incumbent)}")
    a, b = [candidate[s] for s in seeds], [incumbent[s] for s in seeds]
    diff = sum(x - y for x, y in zip(a, b)) / len(seeds)
    claim = "greater" if direction == "max" else "less"
    try:
        found = stats.compare_samples(a, b, paired=True, claim=claim, alpha=alpha)
    except stats.NothingToTest as e:
        return Decision(False, diff, None, f"not kept: {e}")
    verb = "beats" if stats.passed(found) else "does not beat"
    found.seeds = seeds
    return Decision(stats.passed(found), found.diff, found.p_value,
                    f"{verb} the incumbent: {stats.sentence(found, 'candidate vs incumbent')}", found)
