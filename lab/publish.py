"""`lab publish`: copy a run's results and figures into a tracked folder (experiments/…), on purpose.

Runs write only under their run directory (git-ignored); committing numbers next to an
experiment's write-up is this explicit step, so no command of the README dirties a clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def publish(run_dir: Path, dest: Path, prefix: str = "") -> list[Path]:
    """Copy RUN/results.json and the run's PNGs (RUN/*.png, RUN/plots/*.png) into directory `dest`,
    each named prefix + its name; a `dest` ending in .json receives the results file alone.
    Returns the paths written."""
    results = run_dir / "results.json"
    if not results.is_file():
        raise FileNotFoundError(f"no results at {results}; evaluate the run first (lab eval {run_dir})")
    if dest.suffix == ".json":
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results, dest)
        return [dest]
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for source in [results, *sorted(run_dir.glob("*.png")), *sorted(run_dir.glob("plots/*.png"))]:
        target = dest / f"{prefix}{source.name}"
        shutil.copyfile(source, target)
        written.append(target)
    return written
