"""The checkpoint: everything needed to resume a run exactly where it stopped, or to evaluate it.

`Checkpoint` names every field a checkpoint holds; on disk it is the plain dict of those fields
(RUN/checkpoints/last.pt, `torch.save`), as before it had a type, so older checkpoints still load:
fields added since then default to None. Saving is atomic (temp file + rename): an interrupted save
never corrupts the last checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from lab.errors import LabError


class CheckpointError(LabError, ValueError):
    """A checkpoint file that is not a lab checkpoint (fields missing or unknown)."""


@dataclass
class Checkpoint:
    """One run's state after a finished epoch (`lab train`) or at the end of the stream (`lab stream`).

    epoch: the last finished epoch (0-based; a stream saves 0); step: optimiser steps taken;
    train_seconds: training wall time so far; config_digest: `RunConfig.digest()` of the run's config
    (a resume with another config is refused); model / target / probes / optimizer: state dicts;
    rng_cpu: this process's CPU RNG state; rng_cuda: the CUDA RNG state (None off CUDA);
    wandb_id: the W&B run (None with W&B off); device: where it trained;
    rng_cpu_ranks: every rank's CPU RNG state, rank order (`lab train`; None for a stream);
    rng_views: the view sampler's generator state (`lab train`; None for a stream)."""

    epoch: int
    step: int
    train_seconds: float
    config_digest: str
    model: dict[str, Any]
    target: dict[str, Any]
    probes: dict[str, Any]
    optimizer: dict[str, Any]
    rng_cpu: torch.Tensor
    rng_cuda: torch.Tensor | None
    wandb_id: str | None
    device: str
    rng_cpu_ranks: list[torch.Tensor] | None = None
    rng_views: torch.Tensor | None = None

    @property
    def world_size(self) -> int:
        """How many data-parallel processes trained the run (one RNG state was kept per rank)."""
        return len(self.rng_cpu_ranks) if self.rng_cpu_ranks else 1

    @property
    def cpu_rng_states(self) -> list[torch.Tensor]:
        """Each rank's CPU RNG state, rank order (the one process's for a checkpoint without per-rank states)."""
        return self.rng_cpu_ranks or [self.rng_cpu]

    def to_dict(self) -> dict[str, Any]:
        """The fields as the dict written to disk (shallow: the state dicts are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.pt"


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> Path:
    """Write RUN/checkpoints/last.pt atomically (temp file + rename); returns its path."""
    path = checkpoint_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint.to_dict(), tmp)
    tmp.replace(path)
    return path


def load_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> Checkpoint:
    """RUN/checkpoints/last.pt, its tensors on `device`."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train the run first (lab train CONFIG)")
    state = torch.load(path, map_location=device, weights_only=False)
    known = {f.name for f in fields(Checkpoint)}
    unknown = sorted(set(state) - known) if isinstance(state, dict) else ["(not a dict)"]
    if unknown:
        raise CheckpointError(f"{path} is not a lab checkpoint: unknown fields {unknown}")
    try:
        return Checkpoint(**state)
    except TypeError as e:  # a required field is missing
        raise CheckpointError(f"{path} is not a lab checkpoint: {e}") from None
