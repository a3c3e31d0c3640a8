"""results.json for every `lab llm` command: the command's measurements plus provenance."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from pathlib import Path

import torch
import transformers


def provenance(seed: int) -> dict:
    """Git commit, seed, library versions and device of this run."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sha = None
    return {"git_sha": sha, "seed": seed, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}


def _finite(obj):
    """Replace NaN/inf floats (a diverged run) with None so the file is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_results(out_dir: Path, results: dict, seed: int) -> Path:
    """Write `results` + provenance to out_dir/results.json and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(_finite({**results, "provenance": provenance(seed)}), indent=2) + "\n")
    return path
