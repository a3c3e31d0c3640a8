"""Checkpoints: everything needed to resume a run exactly where it stopped, or to evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.pt"


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so an interrupted save never corrupts the last one."""
    path = checkpoint_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train the run first (lab train CONFIG)")
    return torch.load(path, map_location=device, weights_only=False)
