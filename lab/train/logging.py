"""Run logging: one JSON line per record in RUN/metrics.jsonl, mirrored to W&B.

W&B runs offline unless WANDB_API_KEY is set (or WANDB_MODE says otherwise; `disabled` turns it
off); the W&B run id is kept in RUN/wandb_id so a resumed run, and `lab eval` afterwards, continue
the same W&B run. The harness links runs to its plan through environment variables:
RALPH_FEATURE (the W&B group, and a tag) and RALPH_PHASE (a tag); the seed is a tag too.
"""

from __future__ import annotations

import json
import os
import re
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
        return start_wandb(cfg, run_dir, job_type="train")

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


def wandb_mode() -> str:
    """offline unless an API key is set; WANDB_MODE wins."""
    return os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")


def strip_seed(name: str, seed: int | None) -> str:
    """A run's name without its seed suffix (`-s{seed}`, `_seed{seed}`): the name its seeds share."""
    return name if seed is None else re.sub(rf"[-_](s|seed){seed}$", "", name)


def plan_labels(seed: int | None, default_group: str) -> dict[str, Any]:
    """W&B group and tags linking a run to the plan: RALPH_FEATURE, RALPH_PHASE (set by the harness) and the seed."""
    feature, phase = os.environ.get("RALPH_FEATURE"), os.environ.get("RALPH_PHASE")
    tags = [f"feature:{feature}"] * bool(feature) + [f"phase:{phase}"] * bool(phase)
    tags += [f"seed:{seed}"] * (seed is not None)
    return {"group": feature or default_group, "tags": tags}


def init_wandb(**kwargs: Any) -> Any:
    """`wandb.init(**kwargs)` for one lab run, finishing first any run still open in this process.

    A command that fails or is interrupted after its run started (an exception mid-training, Ctrl-C,
    a test timeout) leaves that run open, and wandb.init's default then *returns the open run*: the
    next command in the process would log into another run's id, folder, group and tags. That is
    how one slow or failed W&B test took the next one down with it under `make test` (issue 22)."""
    import wandb

    return wandb.init(reinit="finish_previous", **kwargs)


def start_wandb(cfg: RunConfig, run_dir: Path, job_type: str) -> Any:
    """Start (or continue, by RUN/wandb_id) the W&B run of a seq-JEPA run; writes RUN/wandb_id."""
    id_file = run_dir / "wandb_id"
    run_id = id_file.read_text().strip() if id_file.is_file() else None  # None: W&B picks a new id
    run = init_wandb(
        project=cfg.logging.project, entity=cfg.logging.entity, name=cfg.name, id=run_id, resume="allow",
        dir=str(run_dir), mode=wandb_mode(), config=cfg.model_dump(mode="json"), job_type=job_type,
        **plan_labels(cfg.train.seed, strip_seed(cfg.name, cfg.train.seed)),
    )
    id_file.write_text(run.id)
    return run


def publish_to_wandb(run: Any, results: dict[str, Any], figures: list[Path]) -> dict[str, Any]:
    """Numeric results as the run's summary, figures as images (key plots/<stem>); finishes the run.

    Returns the link to record in results.json: wandb_id, wandb_project, wandb_url (None offline) and
    wandb_dir (the local W&B folder holding this run's offline records: what `wandb sync` uploads).
    """
    import wandb

    run.summary.update({k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if figures:
        run.log({f"plots/{f.stem}": wandb.Image(str(f)) for f in figures})
    link = {"wandb_id": run.id, "wandb_project": run.project, "wandb_url": run.url,
            "wandb_dir": str(Path(run.dir).parents[1])}
    run.finish()
    return link


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of RUN/metrics.jsonl, in order."""
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
