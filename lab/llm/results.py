"""results.json for every `lab llm` command: the command's measurements plus provenance, mirrored to W&B.

W&B as for seq-JEPA runs (lab.rundir.wandb_run): offline unless WANDB_API_KEY is set, off with
WANDB_MODE=disabled, project WANDB_PROJECT (default lab-llm), grouped and tagged by RALPH_FEATURE /
RALPH_PHASE and the seed. The run's summary holds every numeric result (nested keys dotted), its
images the command's figures (OUT/*.png); its id and local folder go into the provenance.
"""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import torch
import transformers

from lab.rundir.provenance import code_version
from lab.rundir.results import write_results_file
from lab.rundir.wandb_run import init_wandb, plan_labels, publish_to_wandb, wandb_mode


def provenance(seed: int) -> dict:
    """Git commit (lab.rundir.provenance), seed, library versions, device and world size (every `lab llm`
    command runs in one process) of this run."""
    return {**code_version(), "seed": seed, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "world_size": 1}


def _finite(obj):
    """Replace NaN/inf floats (a diverged run) with None so the file is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _to_wandb(out_dir: Path, job: str, results: dict, seed: int) -> dict:
    """One W&B run for this command: numeric results as summary, OUT/*.png as images; returns its link."""
    from lab.compare import flatten_numeric

    settings = {k: v for k, v in results.items() if isinstance(v, (str, int, float, bool)) or v is None}
    run = init_wandb(project=os.environ.get("WANDB_PROJECT", "lab-llm"), name=job, job_type=job, dir=str(out_dir),
                     mode=wandb_mode(), config={**settings, "seed": seed}, **plan_labels(seed, job))
    return publish_to_wandb(run, flatten_numeric(_finite(results)), sorted(out_dir.glob("*.png")))


def write_results(out_dir: Path, results: dict, seed: int, job: str) -> Path:
    """Log `results` to W&B as run `job` (unless WANDB_MODE=disabled), then write them with provenance
    (the W&B link included) to out_dir/results.json (lab.rundir.results); returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prov = provenance(seed) | (_to_wandb(out_dir, job, results, seed) if wandb_mode() != "disabled" else {})
    return write_results_file(out_dir / "results.json", _finite({**results, "provenance": prov}))
