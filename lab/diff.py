"""`lab diff`: one metric of two groups of runs (e.g. seeds with and without replay) and their difference.

Each group is a list of results files (results.json, stream.json); the metric is read from every
file with the harness's dotted-key rule (a flat key first, then nested objects). The output file
holds each group's mean, standard deviation (population) and values, `diff` = mean(a) −
mean(b), `spread` = std(a) + std(b), and `diff_plus_spread` / `diff_minus_spread` = diff ± spread,
so a PRD metric gate can state a comparison beyond the seed noise ("forgetting with replay below
without by more than the seeds' spread": diff_plus_spread < 0) that a single run's file cannot. (`lab compare` tabulates every metric of many groups;
this is the one-number difference a gate reads.)

With `paired` (runs matched seed by seed, e.g. a variant and its ablation trained from the same
initial weights and data order), the file also holds `paired`: the per-seed differences a[i] −
b[i], their mean, sample standard deviation (n − 1) and mean ∓ std. What the two runs of a seed
share (the initial network, its untrained twin) cancels there, so it measures an effect the
unpaired spread would drown in seed-to-seed variation of both groups alike.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def recorded_seed(raw: dict[str, Any]) -> int | None:
    """The seed a decoded results file records: flat `provenance.seed` (seq-JEPA runs) or nested
    `provenance: {seed}` (the LLM track's layout); None when it records none."""
    nested = raw["provenance"] if isinstance(raw.get("provenance"), dict) else {}
    seed = raw.get("provenance.seed", nested.get("seed"))
    return seed if isinstance(seed, int) else None


def _load(path: Path) -> dict[str, Any]:
    """The decoded results file `path`; ValueError naming the file when it is absent."""
    if not path.is_file():
        raise ValueError(f"no results file at {path}; run the experiment first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds {type(data).__name__}, not a JSON object of metrics")
    return data


def metric(data: dict[str, Any], key: str, path: Path) -> float:
    """The value of `key` in a decoded results file (from `path`); ValueError naming the file when absent."""
    if key in data:
        return float(data[key])
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{path} has no key {key!r}")
        node = node[part]
    return float(node)


def paired_differences(groups: dict[str, list[tuple[Path, dict[str, Any]]]], values: dict[str, list[float]]
                       ) -> dict[str, Any]:
    """{"diffs": a[i] − b[i], "mean", "std" (sample), "mean_minus_std", "mean_plus_std"}; ValueError unless
    the groups pair up: as many files each, at least two pairs, and the same seed in each pair where recorded."""
    a, b = groups["a"], groups["b"]
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"--paired needs the same number of files in both groups, two or more (got {len(a)} and {len(b)})")
    for (pa, da), (pb, db) in zip(a, b, strict=True):
        sa, sb = recorded_seed(da), recorded_seed(db)
        if sa is not None and sb is not None and sa != sb:
            raise ValueError(f"--paired pairs files in order, but {pa} is seed {sa} and {pb} seed {sb}: "
                             "give both groups' files in the same seed order")
    diffs = [x - y for x, y in zip(values["a"], values["b"], strict=True)]
    mean, std = statistics.fmean(diffs), statistics.stdev(diffs)
    return {"diffs": diffs, "mean": mean, "std": std, "mean_minus_std": mean - std, "mean_plus_std": mean + std}


def diff_groups(a: list[Path], b: list[Path], key: str, paired: bool = False) -> dict[str, Any]:
    """{"key", "a": {mean, std, values, files}, "b": {…}, "diff": mean(a) − mean(b), "spread": std(a) + std(b),
    "diff_plus_spread", "diff_minus_spread"}, and with `paired` "paired" (see paired_differences)."""
    loaded, values, report = {}, {}, {"key": key}
    for name, files in (("a", a), ("b", b)):
        if not files:
            raise ValueError(f"group {name} has no results files")
        loaded[name] = [(p, _load(p)) for p in files]  # each file read once
        values[name] = [metric(data, key, p) for p, data in loaded[name]]
        report[name] = {"mean": statistics.fmean(values[name]), "std": statistics.pstdev(values[name]),
                        "values": values[name], "files": [str(p) for p in files]}
    diff, spread = report["a"]["mean"] - report["b"]["mean"], report["a"]["std"] + report["b"]["std"]
    report |= {"diff": diff, "spread": spread, "diff_plus_spread": diff + spread, "diff_minus_spread": diff - spread}
    if paired:
        report["paired"] = paired_differences(loaded, values)
    return report
