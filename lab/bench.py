"""`lab bench views | train | stream`: throughput and memory figures measured in this process.

views: views/s of the batched on-device pipeline against the released code's per-sample pipeline
(`lab.bench_official`: PIL on uint8 images, optionally in DataLoader workers) and against our
own sampler called one sample at a time. train: optimiser steps/s and peak memory for run
configs on the procedural shapes, and for augment configs the official-style step (per-sample
views, fp32) on the same model. stream: peak memory of a 3DIEBench config streamed from a
paper-sized synthetic split. Every ratio is against a baseline measured in the same run.
On CPU the memory figure is the process's peak resident set size (it includes everything the
process holds); on CUDA it is `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import contextlib
import json
import resource
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
import typer
from rich.console import Console
from rich.table import Table

from torch.utils.data import DataLoader

from lab.bench_aggregators import aggregators_cmd
from lab.bench_official import CifarStyleSequences, IEBenchStyleSequences
from lab.config import ConfigError, ViewsConfig, load_config
from lab.data.disk.iebench import objects_for_split
from lab.data.disk.synthetic import write_sparse_split, write_tree
from lab.data.embedded import make_shapes
from lab.data.registry import load_dataset
from lab.data.actions import consecutive_diff
from lab.data.views import Sequence, ViewSampler, build_view_sampler
from lab.losses.objective import objective
from lab.bench_options import Device, Threads, bench_device
from lab.build import accelerate, autocast_for, build_parts, build_sampler
from lab.train.loop import train_step
from lab.train.optim import build_optimizer

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)  # name and help: lab.cli.DEFERRED
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


def _official_rate(dataset: torch.utils.data.Dataset, batch: int, workers: int, reps: int) -> float:
    """Views/s of a per-sample baseline dataset batched by a DataLoader (`workers` processes, 0: in-process)."""
    order = list(range(batch)) * (reps + 1)  # the first batch warms up (and starts the workers)
    loader = DataLoader(dataset, batch_size=batch, sampler=order, num_workers=workers)
    batches = iter(loader)
    first = next(batches)
    t0 = time.perf_counter()
    for _ in range(reps):
        next(batches)
    return batch * first[0].shape[1] * reps / (time.perf_counter() - t0)


def _ours_rates(sampler: ViewSampler, batch_size: int, num_views: int, per_sample: int, reps: int,
                device: torch.device) -> tuple[float, float]:
    """Views/s of our batched sampler and of the same sampler called one sample at a time."""
    idx = torch.arange(batch_size, device=device) % sampler.num_samples

    def per_sample_loop() -> None:
        torch.cat([sampler.sample(idx[i : i + 1], num_views).views for i in range(per_sample)])

    batched = _rate(lambda: sampler.sample(idx, num_views), batch_size * num_views, device, reps)
    return batched, _rate(per_sample_loop, per_sample * num_views, device, 1)


def _row(kind: str, batch: int, views: int, workers: int, ours: float, official: float | None, per_sample: float,
         **extra: object) -> dict:
    return {"kind": kind, "batch": batch, "views": views, "workers": workers, "ours_batched_views_s": ours,
            "official_style_views_s": official, "ours_per_sample_views_s": per_sample,
            "speedup_vs_official": None if official is None else ours / official,
            "speedup_vs_ours_per_sample": ours / per_sample, **extra}


def bench_views(kinds: list[str], batch_size: int, num_views: int, per_sample: int, reps: int, device: torch.device,
                workers: int = 0, iebench_objects: int = 8, scratch: Path | None = None) -> list[dict]:
    """One row per view kind: our batched views/s against the official-style per-sample pipeline
    (augment: `CIFAR100_aug`; 3diebench: `Dataset_3DIEBench_MultipleViews`, JPEGs from a synthetic
    tree) and against our own sampler called per sample. rotation/affine have no official pipeline."""
    rows = []
    for kind in kinds:
        if kind == "3diebench":
            rows.append(_bench_iebench(batch_size, num_views, per_sample, reps, device, workers, iebench_objects, scratch))
            continue
        ds = make_shapes("train", num=max(batch_size, per_sample), image_size=32)
        sampler = build_view_sampler(ds, ViewsConfig(kind=kind), device)
        ours, single = _ours_rates(sampler, batch_size, num_views, per_sample, reps, device)
        official = None
        if kind == "augment":
            official = _official_rate(CifarStyleSequences(ds.images, ds.labels, num_views), per_sample, workers, reps)
        rows.append(_row(kind, batch_size, num_views, workers, ours, official, single, px=32))
    return rows


def _bench_iebench(batch_size: int, num_views: int, per_sample: int, reps: int, device: torch.device, workers: int,
                   objects: int, scratch: Path | None) -> dict:
    """3DIEBench-style row: 256² JPEG renders → 128² views; ours streamed from the uint8 disk cache."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = Path(tmp)
        write_tree(root, synsets=1, objects=objects * 5 // 4 + 1, renders=50, size=256)
        t0 = time.perf_counter()
        ds = load_dataset("3diebench", root, "train", image_size=128, stream="disk", progress=False)
        cache_s = time.perf_counter() - t0
        sampler = build_view_sampler(ds, ViewsConfig(kind="quat"), device)
        ours, single = _ours_rates(sampler, batch_size, num_views, min(per_sample, 16), reps, device)
        names, _, _ = objects_for_split(root, "train")
        official_ds = IEBenchStyleSequences([root / "3DIEBench" / n for n in names], [0] * len(names), num_views, 128)
        official = _official_rate(official_ds, min(per_sample, len(names)), workers, reps)
    return _row("3diebench", batch_size, num_views, workers, ours, official, single, px=128,
                cache_build_s=cache_s, cache_renders=len(ds))


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _official_batches(cfg, bs: int, workers: int, device: torch.device) -> Iterator[Sequence]:
    """Official-style sequence batches for an augment config: per-sample PIL views collated by a
    DataLoader, parameters normalised across views then differenced (`train_one_epoch_aug`)."""
    ds = make_shapes("train", num=bs, image_size=cfg.data.image_size)
    loader = DataLoader(CifarStyleSequences(ds.images, ds.labels, cfg.data.seq_len + 1), batch_size=bs,
                        sampler=list(range(bs)) * 10_000, num_workers=workers, pin_memory=device.type == "cuda")
    for views, params, labels, _ in loader:
        actions = consecutive_diff(F.normalize(params.to(device), p=2, dim=1))
        yield Sequence(views=views.to(device), actions=actions, labels=labels.to(device))


def bench_train(configs: list[Path], batch_size: int | None, steps: int, device: torch.device,
                workers: int = 0, overrides: list[str] = ()) -> list[dict]:
    """One row per config: steps/s and images/s of our `train_step` (batched views, the config's
    bf16 / channels_last / compile on CUDA) and peak memory; for augment configs also the
    official-style step on the same model (per-sample PIL views in `workers` processes, fp32)."""
    rows = []
    for path in configs:
        cfg = load_config(path, ["data.name=shapes", "logging.wandb=false", *overrides])
        bs = batch_size or cfg.train.batch_size
        sampler = build_view_sampler(make_shapes("train", num=bs, image_size=cfg.data.image_size), cfg.data.views, device)
        model, target, probes = build_parts(cfg, sampler, device)
        opt = build_optimizer(cfg.optim, model, probes)
        loss_fn, m = partial(objective, cfg.objective), cfg.data.seq_len
        idx = torch.arange(bs, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        accelerate(cfg, model, target, device)
        autocast = autocast_for(device, cfg.train.bf16)
        rate = _rate(lambda: train_step(model, target, probes, opt, loss_fn, sampler.sample(idx, m + 1), 0.996, autocast),
                     1, device, steps)
        row = {"config": path.name, "encoder": cfg.model.encoder.kind, "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
               "batch": bs, "M": m, "px": cfg.data.image_size, "steps_s": rate, "images_s": rate * bs * (m + 1),
               "peak_mem_MiB": _peak_memory_mib(device), "official_style_steps_s": None, "speedup_vs_official": None}
        if cfg.data.views.kind == "augment":
            batches = _official_batches(cfg, bs, workers, device)
            official = _rate(lambda: train_step(model, target, probes, opt, loss_fn, next(batches), 0.996,
                                                contextlib.nullcontext()), 1, device, steps)
            row |= {"official_style_steps_s": official, "speedup_vs_official": rate / official, "workers": workers}
        rows.append(row)
    return rows


def bench_stream(config: Path, synsets: int, objects: int, batch_size: int, steps: int, device: torch.device,
                 scratch: Path) -> dict:
    """Peak memory of `steps` training steps of a 3DIEBench config streamed from a full-size synthetic split
    (object folders plus a sparse uint8 cache: reads return zeros, no disk used)."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = Path(tmp)
        cfg = load_config(config, [f"data.root={root}", "data.stream=disk", f"train.batch_size={batch_size}",
                                   "data.num_train=null", "logging.wandb=false"])
        t0 = time.perf_counter()
        write_sparse_split(root, synsets, objects, renders=50, size=cfg.data.image_size)
        setup_s = time.perf_counter() - t0
        before = _peak_memory_mib(device)
        sampler = build_sampler(cfg, "train", device)
        model, target, probes = build_parts(cfg, sampler, device)
        opt = build_optimizer(cfg.optim, model, probes)
        accelerate(cfg, model, target, device)
        autocast, m = autocast_for(device, cfg.train.bf16), cfg.data.seq_len
        perm = torch.randperm(sampler.num_samples, device=device)
        batches = iter(perm.split(batch_size))
        rate = _rate(lambda: train_step(model, target, probes, opt, partial(objective, cfg.objective),
                                        sampler.sample(next(batches), m + 1), 0.996, autocast), 1, device, steps)
        split_gib = sampler.images.nbytes / 2**30 if sampler.streamed else float("nan")
        return {"config": config.name, "objects": sampler.num_samples, "renders": len(sampler.images),
                "split_GiB": split_gib, "batch": batch_size, "M": m, "px": sampler.image_size, "steps_s": rate,
                "peak_mem_MiB_before_data": before, "peak_mem_MiB": _peak_memory_mib(device), "setup_s": setup_s}


def _cell(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else "n/a" if v is None else str(v)


def _emit(rows: list[dict], title: str, path: Path, device: torch.device) -> None:
    """Print the rows as columns of one table (a field per line), and write them as JSON."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    table = Table("", *(f"#{i + 1}" for i in range(len(rows))), title=f"{title} on {device} ({torch.get_num_threads()} threads)")
    for field in fields:
        table.add_row(field, *(_cell(row.get(field, "")) for row in rows))
    out.print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    out.print(f"wrote {path}")


@app.command("views")
def views_cmd(
    kinds: list[str] = typer.Option(["augment", "3diebench"], "--kind",
                                    help="augment (CIFAR-style, 32²), 3diebench (renders, 128²), rotation, affine"),
    batch_size: int = typer.Option(256, help="samples per batched call"),
    num_views: int = typer.Option(4, help="views per sample (M+1)"),
    per_sample: int = typer.Option(64, help="samples timed in each per-sample baseline (one DataLoader batch)"),
    reps: int = typer.Option(3, help="timed calls of each pipeline, after one warm-up"),
    workers: int = typer.Option(0, help="DataLoader worker processes for the official-style baseline (0: in-process)"),
    iebench_objects: int = typer.Option(8, help="objects (× 50 JPEG renders) in the synthetic 3DIEBench tree"),
    device: Device = "auto",
    threads: Threads = None,
    out_path: Path = typer.Option(Path("runs/bench/views.json"), "--out"),
) -> None:
    """Views/s: our batched on-device views against the released code's per-sample pipeline
    (PIL on uint8 images, same operations and sizes; in DataLoader workers with --workers) and
    against our own sampler called one sample at a time."""
    bad = [k for k in kinds if k not in ("rotation", "affine", "augment", "3diebench")]
    if bad:
        raise typer.BadParameter(f"unknown view kind(s) {bad}; choose from augment, 3diebench, rotation, affine")
    dev = bench_device(device, threads)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _emit(bench_views(kinds, batch_size, num_views, per_sample, reps, dev, workers, iebench_objects,
                      scratch=out_path.parent), "views/s", out_path, dev)


@app.command("train")
def train_cmd(
    configs: list[Path] = typer.Argument(None, help="run configs (default: the smoke and paper-sized configs)"),
    batch_size: int | None = typer.Option(None, help="override each config's batch size"),
    steps: int = typer.Option(5, help="timed steps per config (after one warm-up step)"),
    workers: int = typer.Option(0, help="DataLoader workers of the official-style step (0: in-process)"),
    set_: list[str] = typer.Option([], "--set", help="config override for every config, e.g. --set train.compile=true"),
    device: Device = "auto",
    threads: Threads = None,
    out_path: Path = typer.Option(Path("runs/bench/train.json"), "--out"),
) -> None:
    """Training steps/s and peak memory for the smoke and paper-sized models; augment configs also
    time the official-style step (per-sample PIL views, fp32) on the same model."""
    configs = configs or [Path("experiments/step1-baseline/smoke.yaml"), Path("configs/seqjepa/paper-cifar100.yaml")]
    dev = bench_device(device, threads)
    try:
        rows = bench_train(configs, batch_size, steps, dev, workers, set_)
    except ConfigError as e:
        raise typer.BadParameter(str(e)) from None
    _emit(rows, "train steps/s", out_path, dev)


@app.command("stream")
def stream_cmd(
    config: Path = typer.Argument(Path("configs/seqjepa/paper-3diebench.yaml"), help="a 3DIEBench run config"),
    synsets: int = typer.Option(55, help="synsets of the synthetic split"),
    objects: int = typer.Option(953, help="objects per synset (4 of 5 go to train: 55 × 953 → 41,932 train objects)"),
    batch_size: int = typer.Option(8, help="global batch of the timed steps"),
    steps: int = typer.Option(2, help="timed steps (after one warm-up step)"),
    device: Device = "auto",
    threads: Threads = None,
    out_path: Path = typer.Option(Path("runs/bench/stream.json"), "--out"),
) -> None:
    """Peak memory of a 3DIEBench config streamed from disk, on a paper-sized synthetic split
    (≈ 96 GiB of uint8 renders as a sparse file) — the bound docs/scale.md documents."""
    dev = bench_device(device, threads)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        row = bench_stream(config, synsets, objects, batch_size, steps, dev, out_path.parent)
    except ConfigError as e:
        raise typer.BadParameter(str(e)) from None
    _emit([row], "streamed 3DIEBench", out_path, dev)
