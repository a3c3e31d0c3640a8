"""Start `lab train` in N processes: torch's elastic launcher (torchrun) and the worker it runs.

`launch` runs torchrun (`torch.distributed.run`) in this process; torchrun starts N workers
(`python -m lab.train.launch CONFIG …`), each of which joins the process group (gloo on CPU, NCCL
on CUDA, one GPU per local rank) and runs the ordinary `lab.train.loop.train`, which finds its
rank through `lab.train.ddp`. Kept apart from `lab.train.ddp` so that the helpers the loop calls
do not import the loop (launch → loop → ddp, no cycle).
Multi-node: the same command on every node with `--nnodes`, `--node-rank` and a
`--rdzv-endpoint host:port` every node reaches (torchrun's rendezvous).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from lab.config import load_config
from lab.errors import LabError
from lab.train.loop import train


class TrainingProcessFailed(LabError, RuntimeError):
    """A torchrun worker exited with an error; the message holds torchrun's report."""


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
    args = get_args_parser().parse_args([*launcher_args, "--module", "lab.train.launch", *worker])
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
    parser = argparse.ArgumentParser(prog="lab.train.launch")
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
