"""The optimize leaderboard of a feature, as the results page shows it.

Input (the one place the page reads it; `ralph leaderboard FEATURE --json` prints the same object):
`.ralph/optimize/<FEATURE>/leaderboard.json` holding `{"trials": [trial, ...]}`, best first. A trial is a
JSON object; these keys are shown first when present, any others after them:

- `n` (0 the baseline), `kind` (baseline, candidate, confirmation), `verdict` (keep, discard, crash),
- `mean`, `std`, `per_seed` (`{"<seed>": value}`), `diff` and `p_value` (against the incumbent),
- `hypothesis` (the agent's own words: untrusted text, shown escaped), `commit` or `ref`, `holdout`, `cost_usd`,
  `wall_s` — the fields of `harness.optimize.board.Trial`, which writes this file.

A nested object (say `params`) shows as `params.<key>` columns; lists and deeper objects as short JSON.
Nothing here is trusted: every value is escaped where it is drawn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.books.layout import ralph_dir

LEADERBOARD = "optimize/{feature}/leaderboard.json"  # under .ralph/
FIRST = ("n", "kind", "verdict", "mean", "std", "per_seed", "diff", "p_value", "hypothesis", "commit", "ref",
         "holdout", "cost_usd", "wall_s")
MAX_TRIALS = 200
CELL_CHARS = 400


@dataclass
class Leaderboard:
    """Rows to draw (`columns` in order, each row's cells as text) or, for a file that is not a leaderboard,
    `problem` saying what is wrong with it."""

    path: Path
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    more: int = 0  # trials beyond MAX_TRIALS, not drawn
    problem: str | None = None


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(", ", ": "))
    else:
        text = str(value)
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"


def _flat(trial: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in trial.items():
        if isinstance(value, dict) and key != "per_seed":
            out.update({f"{key}.{k}": _cell(v) for k, v in value.items()})
        elif key == "per_seed" and isinstance(value, dict):
            out[key] = ", ".join(f"s{k}: {_cell(v)}" for k, v in value.items())
        else:
            out[key] = _cell(value)
    return out


def read_leaderboard(repo: Path, feature_id: str) -> Leaderboard | None:
    """The feature's leaderboard, or None when it has none (no optimize run)."""
    path = ralph_dir(repo) / LEADERBOARD.format(feature=feature_id)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return Leaderboard(path, problem=f"cannot be read: {e}")
    trials = data.get("trials") if isinstance(data, dict) else None
    if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
        return Leaderboard(path, problem='is not {"trials": [{...}, ...]}')
    rows = [_flat(t) for t in trials[:MAX_TRIALS]]
    seen = list(dict.fromkeys(k for row in rows for k in row))
    columns = [k for k in FIRST if k in seen] + [k for k in seen if k not in FIRST]
    return Leaderboard(path, columns, rows, more=max(0, len(trials) - MAX_TRIALS))
