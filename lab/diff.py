"""`lab diff`: one metric of two groups of runs (e.g. seeds with and without replay) and their difference.

Each group is a list of results files (results.json, stream.json), each read once with the harness's
key rule (lab/results.py). The output file holds each group's mean, sample standard deviation (n − 1,
as everywhere in the lab and the harness) and values, `diff` = mean(a) − mean(b), `spread` = std(a) +
std(b) (`results.summed_spread`), and `diff_plus_spread` / `diff_minus_spread` = diff ± spread. (`lab
compare` tabulates every metric of many groups; this is the one-number difference a script reads.)
A difference beyond the seeds' spread is not a statistical test: to gate a claim against a control,
use a `compare` check in PRD.json (a paired or Welch t-test with its p-value; docs/statistics.md).

With `paired` (runs matched seed by seed, e.g. a variant and its ablation trained from the same
initial weights and data order), the file also holds `paired`: the per-seed differences a[i] −
b[i], their mean, sample standard deviation (n − 1) and mean ∓ std. What the two runs of a seed
share (the initial network, its untrained twin) cancels there, so it measures an effect the
unpaired spread would drown in seed-to-seed variation of both groups alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.results import Result, mean, read, sample_std, summed_spread, value


def paired_differences(groups: dict[str, list[Result]], values: dict[str, list[float]]) -> dict[str, Any]:
    """{"diffs": a[i] − b[i], "mean", "std" (sample), "mean_minus_std", "mean_plus_std"}; ValueError unless
    the groups pair up: as many files each, at least two pairs, and the same seed in each pair where recorded."""
    a, b = groups["a"], groups["b"]
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"--paired needs the same number of files in both groups, two or more (got {len(a)} and {len(b)})")
    for ra, rb in zip(a, b, strict=True):
        if ra.seed is not None and rb.seed is not None and ra.seed != rb.seed:
            raise ValueError(f"--paired pairs files in order, but {ra.path} is seed {ra.seed} and {rb.path} seed "
                             f"{rb.seed}: give both groups' files in the same seed order")
    diffs = [x - y for x, y in zip(values["a"], values["b"], strict=True)]
    m, std = mean(diffs), sample_std(diffs) or 0.0
    return {"diffs": diffs, "mean": m, "std": std, "mean_minus_std": m - std, "mean_plus_std": m + std}


def diff_groups(a: list[Path], b: list[Path], key: str, paired: bool = False) -> dict[str, Any]:
    """{"key", "a": {mean, std, values, files}, "b": {…}, "diff": mean(a) − mean(b), "spread": std(a) + std(b),
    "diff_plus_spread", "diff_minus_spread"}, and with `paired` "paired" (see paired_differences). std is the
    sample standard deviation (0 for a group of one)."""
    loaded, values, report = {}, {}, {"key": key}
    for name, files in (("a", a), ("b", b)):
        if not files:
            raise ValueError(f"group {name} has no results files")
        loaded[name] = [read(p) for p in files]  # each file read once
        values[name] = [value(r.data, key, r.path) for r in loaded[name]]
        report[name] = {"mean": mean(values[name]), "std": sample_std(values[name]) or 0.0,
                        "values": values[name], "files": [str(p) for p in files]}
    diff, spread = report["a"]["mean"] - report["b"]["mean"], summed_spread(values["a"], values["b"])
    report |= {"diff": diff, "spread": spread, "diff_plus_spread": diff + spread, "diff_minus_spread": diff - spread}
    if paired:
        report["paired"] = paired_differences(loaded, values)
    return report
