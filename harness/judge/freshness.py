"""Metric files must come from this verification's own runs, not from the agent's editor.

Before a feature's checks run, the files its metric gates, comparisons and report figures read are moved
aside; the run checks must write them again. A file they do not regenerate is put back afterwards (nothing is lost),
but its gate has already failed with "missing", which is the verdict it deserves.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.plan.prd import Feature


def metric_files(feature: Feature) -> list[str]:
    """Repository-relative paths of every file the feature's metric gates, comparisons and report figures read,
    seeds expanded."""
    return list(dict.fromkeys([*(path for check in feature.verify for path in check.read_files()),
                               *feature.report_files()]))


@contextmanager
def regenerated(repo: Path, paths: list[str], stash: Path) -> Iterator[None]:
    """Move `paths` into `stash` for the duration; restore those not written again meanwhile."""
    moved: list[str] = []
    for rel in paths:
        src = repo / rel
        if src.is_file():
            dst = stash / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, dst)
            moved.append(rel)
    try:
        yield
    finally:
        for rel in moved:
            if not (repo / rel).exists():
                (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(stash / rel, repo / rel)
