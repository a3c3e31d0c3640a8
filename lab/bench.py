"""`lab bench views` and `lab bench train`: throughput figures measured in this process.

views: views/s of the batched on-device pipeline against the same samplers called one sample
at a time from a Python loop (the official code's per-sample `__getitem__` style), same data,
same transforms. train: optimiser steps/s and peak memory for given run configs on the
procedural shapes (at the config's image size and view kind), so no download is needed.
On CPU the memory figure is the process's peak resident set size (it includes everything the
process holds); on CUDA it is `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import json
import resource
import time
from functools import partial
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

from lab.bench_aggregators import aggregators_cmd
from lab.config import ConfigError, ViewsConfig, load_config
from lab.data.embedded import make_shapes
from lab.data.views import ViewSampler, build_view_sampler
from lab.losses import objective
from lab.build import autocast_for, build_parts, resolve_device
from lab.train.loop import train_step
from lab.train.optim import build_optimizer

app = typer.Typer(help="Throughput benchmarks (views/s, train steps/s, peak memory).", no_args_is_help=True)
app.command("aggregators")(aggregators_cmd)
out = Console()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(fn, items: int, device: torch.device, reps: int) -> float:
    """Items per second of fn() averaged over reps calls after one warm-up call."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    _sync(device)
    return items * reps / (time.perf_counter() - t0)


def bench_views(kinds: list[str], batch_size: int, num_views: int, per_sample: int, reps: int, device: torch.device) -> list[dict]:
    """One row per view kind: batched and per-sample views/s and their ratio."""
    ds = make_shapes("train", num=max(batch_size, per_sample), image_size=32)
    rows = []
    for kind in kinds:
        sampler: ViewSampler = build_view_sampler(ds, ViewsConfig(kind=kind), device)
        idx = torch.arange(batch_size, device=device)

        def per_sample_loop() -> None:
            views = [sampler.sample(idx[i : i + 1], num_views).views for i in range(per_sample)]
            torch.cat(views)

        batched = _rate(lambda: sampler.sample(idx, num_views), batch_size * num_views, device, reps)
        single = _rate(per_sample_loop, per_sample * num_views, device, 1)
        rows.append({"kind": kind, "batch": batch_size, "views": num_views,
                     "batched_views_s": batched, "per_sample_views_s": single, "speedup": batched / single})
    return rows


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_train(configs: list[Path], batch_size: int | None, steps: int, device: torch.device) -> list[dict]:
    """One row per config: steps/s and images/s of `train_step`, and peak memory."""
    rows = []
    for path in configs:
        cfg = load_config(path, ["data.name=shapes", "logging.wandb=false"])
        bs = batch_size or cfg.train.batch_size
        sampler = build_view_sampler(make_shapes("train", num=bs, image_size=cfg.data.image_size), cfg.data.views, device)
        model, target, probes = build_parts(cfg, sampler, device)
        opt = build_optimizer(cfg.optim, model, probes)
        loss_fn, autocast, m = partial(objective, cfg.objective), autocast_for(device, cfg.train.bf16), cfg.data.seq_len
        idx = torch.arange(bs, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def step() -> None:
            train_step(model, target, probes, opt, loss_fn, sampler.sample(idx, m + 1), 0.996, autocast)

        rate = _rate(step, 1, device, steps)
        params = sum(p.numel() for p in model.parameters())
        rows.append({"config": path.name, "encoder": cfg.model.encoder.kind, "params_M": params / 1e6, "batch": bs,
                     "M": m, "px": cfg.data.image_size, "steps_s": rate,
                     "images_s": rate * bs * (m + 1), "peak_mem_MiB": _peak_memory_mib(device)})
    return rows


def _emit(rows: list[dict], title: str, path: Path, device: torch.device) -> None:
    table = Table(*rows[0].keys(), title=f"{title} on {device} ({torch.get_num_threads()} threads)")
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    out.print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    out.print(f"wrote {path}")


@app.command("views")
def views_cmd(
    kinds: list[str] = typer.Option(["rotation", "affine", "augment"], "--kind", help="view kinds to time"),
    batch_size: int = typer.Option(256, help="samples per batched call"),
    num_views: int = typer.Option(4, help="views per sample (M+1)"),
    per_sample: int = typer.Option(64, help="samples timed in the per-sample loop"),
    reps: int = typer.Option(5, help="batched calls timed"),
    device: str = typer.Option("auto"),
    threads: int | None = typer.Option(None, help="torch CPU threads"),
    out_path: Path = typer.Option(Path("runs/bench/views.json"), "--out"),
) -> None:
    """Views/s: batched on-device pipeline vs a per-sample Python loop doing the same transforms."""
    bad = [k for k in kinds if k not in ("rotation", "affine", "augment")]
    if bad:
        raise typer.BadParameter(f"unknown view kind(s) {bad}; the shapes bench supports rotation, affine, augment")
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    _emit(bench_views(kinds, batch_size, num_views, per_sample, reps, dev), "views/s", out_path, dev)


@app.command("train")
def train_cmd(
    configs: list[Path] = typer.Argument(None, help="run configs (default: the smoke and paper-sized configs)"),
    batch_size: int | None = typer.Option(None, help="override each config's batch size"),
    steps: int = typer.Option(5, help="timed steps per config (after one warm-up step)"),
    device: str = typer.Option("auto"),
    threads: int | None = typer.Option(None, help="torch CPU threads"),
    out_path: Path = typer.Option(Path("runs/bench/train.json"), "--out"),
) -> None:
    """Training steps/s and peak memory for the smoke and paper-sized models."""
    configs = configs or [Path("experiments/step1-baseline/smoke.yaml"), Path("configs/seqjepa/paper-cifar100.yaml")]
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    try:
        rows = bench_train(configs, batch_size, steps, dev)
    except ConfigError as e:
        raise typer.BadParameter(str(e)) from None
    _emit(rows, "train steps/s", out_path, dev)
