"""`lab diff`: one metric of two groups of runs (e.g. seeds with and without replay) and their difference.

Each group is a list of results files (results.json, stream.json); the metric is read from every
file with the harness's dotted-key rule (a flat key first, then nested objects). The output file
holds each group's mean, standard deviation (population) and values, `diff` = mean(a) −
mean(b), `spread` = std(a) + std(b), and `diff_plus_spread` / `diff_minus_spread` = diff ± spread,
so a PRD metric gate can state a comparison beyond the seed noise ("forgetting with replay below
without by more than the seeds' spread": diff_plus_spread < 0) that a single run's file cannot. (`lab compare` tabulates every metric of many groups;
this is the one-number difference a gate reads.)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def read_metric(path: Path, key: str) -> float:
    """The value of `key` in the JSON file `path`; ValueError naming the file when absent."""
    if not path.is_file():
        raise ValueError(f"no results file at {path}; run the experiment first")
    data: Any = json.loads(path.read_text())
    if key in data:
        return float(data[key])
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{path} has no key {key!r}")
        node = node[part]
    return float(node)


def diff_groups(a: list[Path], b: list[Path], key: str) -> dict[str, Any]:
    """{"key", "a": {mean, std, values, files}, "b": {…}, "diff": mean(a) − mean(b), "spread": std(a) + std(b),
    "diff_plus_spread", "diff_minus_spread"}."""
    groups = {}
    for name, files in (("a", a), ("b", b)):
        if not files:
            raise ValueError(f"group {name} has no results files")
        values = [read_metric(p, key) for p in files]
        groups[name] = {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "values": values,
                        "files": [str(p) for p in files]}
    diff, spread = groups["a"]["mean"] - groups["b"]["mean"], groups["a"]["std"] + groups["b"]["std"]
    return {"key": key, **groups, "diff": diff, "spread": spread, "diff_plus_spread": diff + spread,
            "diff_minus_spread": diff - spread}
