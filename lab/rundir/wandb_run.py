"""The W&B side of a run: its mode, the labels linking it to the plan, start or resume, publish.

W&B runs offline unless WANDB_API_KEY is set (or WANDB_MODE says otherwise; `disabled` turns it
off); a seq-JEPA run's W&B id is kept in RUN/wandb_id so a resumed run, and `lab eval` afterwards,
continue the same W&B run. The harness links runs to its plan through environment variables:
RALPH_FEATURE (the W&B group, and a tag) and RALPH_PHASE (a tag); the seed is a tag too.
`publish_to_wandb` returns the link that results files record under `provenance`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from lab.config import RunConfig


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
