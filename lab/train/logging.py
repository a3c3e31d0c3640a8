"""Run logging: one JSON line per record in RUN/metrics.jsonl, mirrored to W&B.

W&B runs offline unless WANDB_API_KEY is set (or WANDB_MODE says otherwise); the W&B run id
is kept in RUN/wandb_id so a resumed run continues the same W&B run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lab.config import RunConfig


class RunLogger:
    def __init__(self, cfg: RunConfig, run_dir: Path, resume_step: int | None = None) -> None:
        """resume_step: the checkpoint's step when resuming; records logged after it are dropped."""
        self.path = run_dir / "metrics.jsonl"
        kept = [r for r in read_metrics(run_dir) if r["step"] <= resume_step] if resume_step is not None else []
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.wandb_run = self._init_wandb(cfg, run_dir) if cfg.logging.wandb else None

    @staticmethod
    def _init_wandb(cfg: RunConfig, run_dir: Path) -> Any:
        import wandb

        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else None  # None: W&B picks a new id
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        run = wandb.init(
            project=cfg.logging.project, entity=cfg.logging.entity, name=cfg.name, id=run_id, resume="allow",
            dir=str(run_dir), mode=mode, config=cfg.model_dump(mode="json"),
        )
        id_file.write_text(run.id)
        return run

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
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
