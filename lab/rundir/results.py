"""The results writer: a run's results as one JSON file (RUN/results.json of `lab eval` and `lab llm`,
RUN/stream.json of `lab stream`, and `eval.copy_to`), written atomically.

The file is replaced whole (`harness.fileio.atomic_write_text`: a temp file in the same folder, fsync,
rename; the harness is the core package the lab builds on), so a reader — a gate, `lab compare`, the
harness's metric checks — never sees a half-written file, and a failed write leaves the previous
results as they were, with the file's permissions as a plain write gives them. Keys and values are
written as given (indent 2, in the dict's order); reading them back is lab/results.py's job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.fileio import atomic_write_text


def write_results_file(path: Path, results: dict[str, Any]) -> Path:
    """Write `results` to `path` as JSON (creating its folder), atomically; returns `path`."""
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")
    return path
