"""Data-parallel training: `lab train CONFIG --nproc N` through torch's elastic launcher.

`launch` runs torchrun (`torch.distributed.run`) in this process; torchrun starts N workers
(`python -m lab.train.ddp CONFIG …`), each of which joins the process group (gloo on CPU, NCCL
on CUDA, one GPU per local rank) and runs the ordinary `lab.train.loop.train`. The loop asks
`current()` which rank it is and then:
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
Multi-node: the same command on every node with `--nnodes`, `--node-rank` and a
`--rdzv-endpoint host:port` every node reaches (torchrun's rendezvous).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


class TrainingProcessFailed(RuntimeError):
    """A torchrun worker exited with an error; the message holds torchrun's report."""


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


def write_summary(run_dir: Path, rank: Rank, spread: float) -> None:
    """RUN/ddp.json: world size, backend and the replicas' parameter spread at the end."""
    if rank.main:
        backend = dist.get_backend() if rank.world > 1 else "none"
        (run_dir / "ddp.json").write_text(json.dumps({"world": rank.world, "backend": backend, "param_spread": spread}))


def torchrun_args(nproc: int, nnodes: int = 1, node_rank: int = 0, rdzv_endpoint: str | None = None,
                  rdzv_id: str = "lab") -> list[str]:
    """torchrun flags: standalone on one node, c10d rendezvous at `rdzv_endpoint` across nodes."""
    if nproc < 1 or nnodes < 1:
        raise ValueError(f"--nproc and --nnodes must be >= 1 (got {nproc}, {nnodes})")
    args = [f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes == 1 and rdzv_endpoint is None:
        return [*args, "--standalone"]
    if rdzv_endpoint is None:
        raise ValueError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (a host every node reaches)")
    return [*args, f"--node-rank={node_rank}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}",
            f"--rdzv-id={rdzv_id}"]


def launch(config: Path, overrides: list[str], resume: bool, launcher_args: list[str]) -> None:
    """Run `lab train` in N processes through torchrun; raises TrainingProcessFailed when a worker fails and
    KeyboardInterrupt when the launcher is interrupted (Ctrl-C, or SIGTERM from a scheduler); torchrun has
    stopped the workers by then, and the last finished epoch is checkpointed."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    worker = [str(config), *(a for o in overrides for a in ("--set", o)), *(["--resume"] if resume else [])]
    args = get_args_parser().parse_args([*launcher_args, "--module", "lab.train.ddp", *worker])
    # torchrun's agent installs its own signal handlers in this process and leaves them; put ours back,
    # so Ctrl-C is a KeyboardInterrupt again after the launch.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    try:
        run(args)
    except ChildFailedError as e:
        raise TrainingProcessFailed(f"a training process failed:\n{e.format_msg()}") from None
    except SignalException:
        raise KeyboardInterrupt from None
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _worker(argv: list[str]) -> None:
    """One torchrun worker: join the group, train, leave."""
    import argparse

    from lab.config import load_config
    from lab.train.loop import train

    parser = argparse.ArgumentParser(prog="lab.train.ddp")
    parser.add_argument("config", type=Path)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    ns = parser.parse_args(argv)
    cfg = load_config(ns.config, ns.set)
    cuda = cfg.train.device.startswith("cuda") or (cfg.train.device == "auto" and torch.cuda.is_available())
    if cuda:  # bind this rank's GPU before NCCL starts
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        train(cfg, resume=ns.resume)
        # Rank 0 alone evaluates, logs and checkpoints at the end: the others wait here, so no rank tears
        # gloo down while a peer still holds the group (a rank aborted in teardown once: "terminate called
        # without an active exception", SIGABRT).
        dist.barrier()
    except KeyboardInterrupt:  # torchrun passes the launcher's Ctrl-C on; the launcher says what to do next
        sys.exit(130)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1:])
