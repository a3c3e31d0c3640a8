"""`lab compare`: runs side by side — mean ± std of each metric over every group's seeds.

A run is a results file (or a run directory holding results.json); nested results (the LLM track's) are
flattened to dotted keys. Runs are grouped by seed (lab/results.py: the run name, recorded or from the
file's stem or folder, without its seed suffix), so `step1-quick-s0` … `step1-quick-s2` form the group
`step1-quick`, whether named as run directories or as files such as `runs/q-s0.json`. std is the
sample standard deviation (n − 1, `results.sample_std`), as in the harness's `mean-std` gates; a group
of one run has none.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.results import ResultsError, mean, read, sample_std

HEADLINE = ["eval.linacc_agg", "eval.linacc_enc", "eval.r2_equi", "eval.leak_r2", "eval.rankme_enc", "eval.rankme_agg"]


class CompareError(LabError, ValueError):
    """Bad input to `lab compare`; the message says what was wrong and how to fix it."""


@dataclass
class Run:
    path: Path  # the results.json read
    name: str
    seed: int | None
    values: dict[str, float]  # flat metric key → value

    group: str  # the name its seeds share


@dataclass
class Stat:
    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return mean(self.values)

    @property
    def std(self) -> float | None:
        return sample_std(self.values)

    def text(self) -> str:
        if not self.values:
            return "—"
        spread = "" if self.std is None else f" ± {_num(self.std)}"
        return f"{_num(self.mean)}{spread} (n={len(self.values)})"


def _num(x: float) -> str:
    return f"{x:.4g}" if abs(x) >= 100 else f"{x:.3f}"


def flatten_numeric(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts as {dotted.key: value} (lists and strings are skipped)."""
    out: dict[str, float] = {}
    for key, value in obj.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten_numeric(value, f"{dotted}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[dotted] = float(value)
    return out


def load_run(path: Path) -> Run:
    """A run directory's results.json, or a results file itself, read once (lab/results.py: name, seed, group)."""
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        hint = f"evaluate it first: lab eval {path}" if path.is_dir() else "pass a run directory or a results.json"
        raise CompareError(f"no results at {file}; {hint}")
    try:
        result = read(file)
    except ResultsError as e:
        raise CompareError(str(e)) from None
    return Run(file, result.name, result.seed, flatten_numeric(result.data), result.group)


def feature_runs(prd: Path, feature: str) -> list[Path]:
    """The run directories a PRD feature evaluates: its `lab eval RUN` checks, once per seed."""
    if not prd.is_file():
        raise CompareError(f"no plan at {prd}; pass --prd PATH")
    features = {f.get("id"): f for f in json.loads(prd.read_text()).get("features", [])}
    if feature not in features:
        raise CompareError(f"no feature {feature!r} in {prd}; features: {', '.join(sorted(features))}")
    runs = []
    for check in features[feature].get("verify", []):
        words = str(check.get("run", "")).split()
        if words[:2] == ["lab", "eval"] and len(words) > 2:
            runs += [Path(words[2].replace("{seed}", str(s))) for s in check.get("seeds") or [None]]
    if not runs:
        raise CompareError(f"feature {feature} has no `lab eval RUN` check: name its runs instead")
    return runs


def select_metrics(runs: list[Run], patterns: list[str]) -> list[str]:
    """Metric keys matching any glob in `patterns` (in pattern order); by default the headline eval keys present,
    else every key all runs share apart from provenance."""
    keys = list(dict.fromkeys(k for r in runs for k in r.values))
    if patterns:
        chosen = [k for p in patterns for k in keys if fnmatch.fnmatchcase(k, p)]
        if not chosen:
            raise CompareError(f"no metric matches {', '.join(patterns)}; the runs have e.g. {', '.join(keys[:8])}")
        return list(dict.fromkeys(chosen))
    headline = [k for k in HEADLINE if k in keys]
    shared = [k for k in keys if all(k in r.values for r in runs) and not k.startswith("provenance")]
    return headline or shared


def summarize(runs: list[Run], metrics: list[str]) -> dict[str, dict[str, Stat]]:
    """{group: {metric: Stat over the group's runs}}, groups in first-seen order."""
    table: dict[str, dict[str, Stat]] = {}
    for run in runs:
        row = table.setdefault(run.group, {m: Stat() for m in metrics})
        for m in metrics:
            if m in run.values:
                row[m].values.append(run.values[m])
    return table


def markdown(summary: dict[str, dict[str, Stat]], metrics: list[str]) -> str:
    """A markdown table: one row per metric, one column per group (and the difference of two groups)."""
    groups = list(summary)
    pair = len(groups) == 2
    header = ["metric", *groups] + ([f"{groups[1]} − {groups[0]}"] if pair else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in metrics:
        cells = [f"`{m}`", *(summary[g][m].text() for g in groups)]
        if pair:
            a, b = summary[groups[0]][m], summary[groups[1]][m]
            cells.append(f"{b.mean - a.mean:+.3f}" if a.values and b.values else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare(paths: list[Path], patterns: list[str], out: Path) -> tuple[dict[str, dict[str, Stat]], list[str]]:
    """Load, group and summarise the runs; write out/compare.{md,json,png} (with two groups the plot also
    shows the difference the table reports, per seed where the groups share seeds). Returns (summary, metrics)."""
    from lab.eval.plots import plot_comparison

    if not paths:
        raise CompareError("name at least one run (a run directory or results.json) or --feature ID")
    runs = [load_run(p) for p in paths]
    metrics = select_metrics(runs, patterns)
    summary = summarize(runs, metrics)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(markdown(summary, metrics))
    record = {"runs": [{"path": str(r.path), "name": r.name, "group": r.group, "seed": r.seed} for r in runs],
              "metrics": {g: {m: {"mean": s.mean if s.values else None, "std": s.std, "n": len(s.values),
                                  "values": s.values} for m, s in row.items()} for g, row in summary.items()}}
    (out / "compare.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_comparison({g: {m: s.values for m, s in row.items()} for g, row in summary.items()}, metrics,
                    out / "compare.png", paired_differences(runs, list(summary), metrics) if len(summary) == 2 else None)
    return summary, metrics


def paired_differences(runs: list[Run], groups: list[str], metrics: list[str]) -> dict[str, list[float]]:
    """Per metric, second group − first group for each seed both groups ran (in seed order); a metric
    whose runs have no seeds in common gets an empty list."""
    by_seed = [{r.seed: r for r in runs if r.group == g and r.seed is not None} for g in groups]
    shared = sorted(by_seed[0].keys() & by_seed[1].keys())
    return {m: [by_seed[1][s].values[m] - by_seed[0][s].values[m] for s in shared
                if m in by_seed[0][s].values and m in by_seed[1][s].values] for m in metrics}
