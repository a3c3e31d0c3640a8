"""RUN/metrics.jsonl: one JSON line per logged record (a dict with its `step`), mirrored to the run's
W&B run (lab.rundir.wandb_run) when the config turns W&B on. Written by rank 0 only under data parallel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.config import RunConfig
from lab.rundir.wandb_run import start_wandb


def metrics_path(run_dir: Path) -> Path:
    return run_dir / "metrics.jsonl"


class RunLogger:
    def __init__(self, cfg: RunConfig, run_dir: Path, resume_step: int | None = None) -> None:
        """Start RUN/metrics.jsonl afresh, or, with resume_step (the checkpoint's step when resuming),
        keep the records up to that step and drop those logged after it."""
        self.path = metrics_path(run_dir)
        kept = [r for r in read_metrics(run_dir) if r["step"] <= resume_step] if resume_step is not None else []
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.wandb_run = start_wandb(cfg, run_dir, job_type="train") if cfg.logging.wandb else None

    @property
    def wandb_id(self) -> str | None:
        return None if self.wandb_run is None else self.wandb_run.id

    def log(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb_run is not None:
            self.wandb_run.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def finish(self) -> None:
        if self.wandb_run is not None:
            self.wandb_run.finish()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of RUN/metrics.jsonl, in order."""
    path = metrics_path(run_dir)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
