"""Data-parallel helpers the training loop calls: which rank this is, its shard, DDP wrapping, reductions.

`lab train CONFIG --nproc N` starts N workers through torchrun (`lab.train.launch`); each joins the
process group and runs the ordinary `lab.train.loop.train`. The loop asks `current()` which rank
it is and then:
- takes its shard of every global batch (train.batch_size is the global batch B; each rank
  makes the views of B / world samples, see `ViewSampler.shard`);
- wraps the model and the online probes in DistributedDataParallel, so gradients are averaged
  over ranks (the same gradient as one process on the whole batch, up to BatchNorm, below);
- keeps the EMA target on every rank (each needs it for its shard's targets; the replicas
  stay identical because the online weights do), and logs, checkpoints and writes W&B on rank 0
  only, with the logged figures averaged over ranks.
BatchNorm: on CUDA, `train.sync_bn` (default on) converts BN layers to SyncBatchNorm so
statistics are over the global batch; on CPU torch has no SyncBatchNorm, so each rank
normalises over its B / world samples (docs/scale.md says what that changes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def current() -> Rank:
    """This process's place in the process group (rank 0 of 1 when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Rank()
    return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def device_for(rank: Rank, device: torch.device) -> torch.device:
    """One GPU per local rank on CUDA; the CPU is shared."""
    if device.type == "cuda" and rank.world > 1:
        torch.cuda.set_device(rank.local_rank)
        return torch.device("cuda", rank.local_rank)
    return device


def shard_batch(rank: Rank, batch_size: int) -> int:
    """The per-rank batch of a global batch; the global batch must split evenly."""
    if batch_size % rank.world:
        raise ValueError(f"train.batch_size {batch_size} does not split over {rank.world} processes; "
                         f"use a multiple of {rank.world}")
    return batch_size // rank.world


def wrap(module: nn.Module, rank: Rank, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` when there is more than one rank; else the module."""
    if rank.world == 1:
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def sync_batchnorm(modules: list[nn.Module], rank: Rank, device: torch.device, enabled: bool) -> None:
    """BatchNorm → SyncBatchNorm in place (CUDA with more than one rank, when enabled)."""
    if not enabled or rank.world == 1 or device.type != "cuda":
        return
    for module in modules:
        for name, child in list(module.named_children()):
            setattr(module, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))


def mean_over_ranks(values: dict[str, float], rank: Rank, device: torch.device) -> dict[str, float]:
    """Each figure averaged over ranks (equal shard sizes, so the mean over the global batch)."""
    if rank.world == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / rank.world).tolist()))


def gather_rng(rank: Rank) -> list[torch.Tensor] | None:
    """Every rank's CPU RNG state, on rank 0 (None elsewhere); for a resume that continues each stream."""
    state = torch.get_rng_state()
    if rank.world == 1:
        return [state]
    states = [None] * rank.world if rank.main else None
    dist.gather_object(state, states, dst=0)
    return states


def replica_spread(module: nn.Module, rank: Rank, device: torch.device) -> float:
    """Largest difference of any parameter across ranks (0 when the replicas are in sync)."""
    flat = torch.cat([p.detach().float().flatten() for p in module.parameters()]).to(device)
    if rank.world == 1:
        return 0.0
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return float((high - low).max())


def summary(rank: Rank, spread: float) -> dict[str, object]:
    """What RUN/ddp.json records: world size, backend and the replicas' parameter spread at the end."""
    backend = dist.get_backend() if rank.world > 1 else "none"
    return {"world": rank.world, "backend": backend, "param_spread": spread}
