"""What every `lab bench` command shares: its --device and --threads options and the set-up they imply."""

from __future__ import annotations

from typing import Annotated, Optional

import torch
import typer

from lab.build import resolve_device
from lab.config import ConfigError

Device = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="torch CPU threads")]


def bench_device(device: str, threads: int | None) -> torch.device:
    """Apply --threads, then resolve --device (a bad name is a usage error naming --device)."""
    if threads:
        torch.set_num_threads(threads)
    try:
        return resolve_device(device)
    except ConfigError as e:
        raise typer.BadParameter(str(e), param_hint="--device") from None
