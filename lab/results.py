"""One definition of each statistic the lab reads from results files: `lab compare`, `lab diff` and `lab gate`
all use this module, and this module uses the harness's own rules, so `lab` and `ralph` never disagree about
one file.

- **Reading** (`load`): a results file is read once, into a JSON object; a missing, unreadable or non-object file
  is a `ResultsError` naming it.
- **One key lookup** (`value`): the harness's gate rule (`harness.judge.checks.lookup`): a flat key first
  (`"eval.linacc_agg"`, as the lab writes them), then dots followed into nested objects (longest prefix first)
  and into lists by index (`"runs.0.acc"`); the value must be a finite number (not a boolean).
- **Gates** (`holds`): the harness's comparison of a value with a threshold (`==` within a relative 1e-9 and
  an absolute 1e-12).
- **Seed groups** (`Result`, `group_by_seed`): a file's run name is its recorded `provenance.run`, else its
  stem when that ends in a seed suffix (`a-s0.json`, `a_seed_0.json`, or `a_0.json` recording seed 0), else its
  folder's name (`runs/a-s0/results.json`); its seed is the recorded one (`provenance.seed`, `provenance: {seed}`
  or a top-level `seed`), else the name's suffix (`-s0`, `_seed0`, `_seed_0`); its group is the name without
  that suffix, so the seeds of one experiment form one group, given as run folders or as result files.
- **Named spreads**: `sample_std` (n − 1; the harness's `agg: mean-std` and `<key>.std`) is the spread of a
  group; `summed_spread` (std(a) + std(b), each a sample std) is the spread `lab diff` puts beside a difference.
  The statistical test of a difference is the harness's `compare` check (docs/statistics.md), not a spread.

The harness is the core of this distribution (installed with every lab extra); the lab may import it, the
harness never imports the lab (docs/architecture.md).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.judge.checks import aggregate, holds, lookup

from lab.errors import LabError

SEED_SUFFIX = re.compile(r"[-_](?:s|seed)[-_]?(\d+)$")  # a-s0, a_seed0, a_seed_0


class ResultsError(LabError, ValueError):
    """A results file or key cannot be used; the message names the file and says what is wrong."""


def load(path: Path) -> dict[str, Any]:
    """The decoded results file `path` (read once); ResultsError naming the file when it is absent or not an object."""
    if not path.is_file():
        raise ResultsError(f"no results file at {path}; run the experiment first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path} cannot be read: {e}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path} holds {type(data).__name__}, not a JSON object of metrics")
    return data


def number(raw: Any) -> float | None:
    """`raw` as a finite number, or None when it is a boolean, not a number, or not finite (the harness's rule)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    try:
        out = float(raw)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def find(data: Any, key: str) -> tuple[bool, Any]:
    """(found, raw value) of `key` by the harness's lookup rule (see the module docstring)."""
    try:
        return True, lookup(data, key)
    except KeyError:
        return False, None
    except RecursionError:
        return False, None


def value(data: Any, key: str, where: Path | str) -> float:
    """The finite number `key` names in decoded results from `where`; ResultsError naming the file otherwise."""
    found, raw = find(data, key)
    if not found:
        raise ResultsError(f"{where} has no key {key!r}")
    out = number(raw)
    if out is None:
        raise ResultsError(f"{key!r} in {where} is {json.dumps(raw)[:60]}, not a finite number")
    return out


def _ends_in_seed(stem: str, seed: int | None) -> bool:
    """`std_0.json` recording seed 0: the file is one seed's, named by its stem (a bare number ends a name
    only when it is the recorded seed, so `resnet-18.json` stays a name)."""
    return seed is not None and re.search(rf"[-_]{seed}$", stem) is not None


def recorded_seed(data: dict[str, Any]) -> int | None:
    """The seed a decoded results file records: flat `provenance.seed` (seq-JEPA runs), nested
    `provenance: {seed}` (the LLM track's layout) or a top-level `seed` (ralph's sklearn template); None when it
    records none."""
    nested = data["provenance"] if isinstance(data.get("provenance"), dict) else {}
    seed = data.get("provenance.seed", nested.get("seed", data.get("seed")))
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


@dataclass
class Result:
    """One results file, read once: where it is, its decoded data, its run name, seed and group."""

    path: Path
    data: dict[str, Any]
    name: str
    seed: int | None

    @property
    def group(self) -> str:
        """The name its seeds share: the run name without its seed suffix (`-s{seed}`, `_seed{seed}`), as
        lab/rundir/wandb_run.py names runs (this module imports nothing of the lab: lab/config.py reads gates here)."""
        return self.name if self.seed is None else re.sub(rf"[-_]((s|seed)[-_]?)?{self.seed}$", "", self.name)


def read(path: Path) -> Result:
    """`path` (a results file) read once, with its run name and seed (see the module docstring)."""
    data = load(path)
    recorded = data.get("provenance.run")
    if isinstance(recorded, str) and recorded:
        name = recorded
    elif SEED_SUFFIX.search(path.stem) or _ends_in_seed(path.stem, recorded_seed(data)):
        name = path.stem
    else:
        name = path.parent.name or path.stem
    seed = recorded_seed(data)
    if seed is None and (suffix := SEED_SUFFIX.search(name)):
        seed = int(suffix.group(1))
    return Result(path, data, name, seed)


def group_by_seed(results: Sequence[Result]) -> dict[str, list[Result]]:
    """{group: its results}, groups and results in first-seen order."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    return groups


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def sample_std(values: Sequence[float]) -> float | None:
    """The sample standard deviation (n − 1) of `values`, as the harness's `mean-std` gates compute it; None for
    fewer than two values (one run has no spread)."""
    return aggregate(values, "mean")[1] if len(values) > 1 else None


def summed_spread(a: Sequence[float], b: Sequence[float]) -> float:
    """std(a) + std(b), each a `sample_std` (0 for a group of one): the spread `lab diff` puts beside
    mean(a) − mean(b)."""
    return (sample_std(a) or 0.0) + (sample_std(b) or 0.0)


__all__ = ["ResultsError", "Result", "find", "group_by_seed", "holds", "load", "mean", "number", "read",
           "recorded_seed", "sample_std", "summed_spread", "value"]
