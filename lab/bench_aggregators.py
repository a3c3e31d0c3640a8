"""`lab bench aggregators`: time per forward+backward and peak memory against sequence length.

Every registered aggregator (its default config with the given layers and heads, at width `dim`)
runs on the same random tokens (B, n, dim) for n in `seq_lens`; the loss is the sum of the output
at position 0 (z_AGG), so the backward pass goes through every layer. Time (`ms`) is the fastest of
`reps` timed calls after a warm-up call: on a shared machine other work only ever adds time, so the
minimum is the least-disturbed estimate (timeit's advice); the median is kept as `ms_median`. Peak
memory is what the call allocates above what was held before it: on CUDA
`torch.cuda.max_memory_allocated`; on CPU the peak of the running sum of the allocations and
frees the PyTorch profiler attributes to each op, in start order (the process's RSS cannot
isolate one call). The scaling
exponent of each aggregator is the slope of log(ms) on log(n), fitted over the lengths where
the call takes at least `min_fit_ms` (shorter calls are dominated by fixed per-op overhead).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

from pydantic import TypeAdapter

from lab.bench_options import Device, Threads, bench_device
from lab.build import AGGREGATORS
from lab.config import AggregatorConfig

BENCHED = ("transformer", "crate", "tost")
out = Console()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_peak_mib(fn) -> float:
    """Peak of the running allocated bytes during fn(), from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    held = peak = 0  # each op's own allocations minus frees, in the order the ops started
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        held += e.self_cpu_memory_usage
        peak = max(peak, held)
    return peak / 2**20


def _peak_mib(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    return _cpu_peak_mib(fn)


def aggregator_config(kind: str, layers: int, heads: int):
    """The default sub-config of aggregator `kind` with `layers` and `heads`."""
    return TypeAdapter(AggregatorConfig).validate_python({"kind": kind, "layers": layers, "heads": heads})


def bench_one(kind: str, layers: int, heads: int, dim: int, seq_len: int, batch: int, reps: int,
              device: torch.device) -> dict:
    """One row: the fastest and the median ms of forward+backward, and peak MiB, for `kind` at `seq_len` tokens."""
    torch.manual_seed(0)
    agg = AGGREGATORS[kind](aggregator_config(kind, layers, heads), dim).to(device).train()
    tokens = torch.randn(batch, seq_len, dim, device=device, requires_grad=True)

    def call() -> None:
        agg(tokens)[:, 0].sum().backward()  # z_AGG at position 0, as the model reads it
        agg.zero_grad(set_to_none=True)
        tokens.grad = None

    call()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"aggregator": kind, "seq_len": seq_len, "ms": min(times), "ms_median": statistics.median(times),
            "peak_mib": _peak_mib(call, device)}


def scaling_exponents(rows: list[dict], min_fit_ms: float = 1.0) -> dict[str, dict]:
    """Per aggregator: slope of log(ms) on log(seq_len) (least squares), and the time ratio over
    the longest 8× span of lengths measured (8× tokens → ×ratio time)."""
    fits = {}
    for kind in dict.fromkeys(r["aggregator"] for r in rows):
        pts = sorted((r["seq_len"], r["ms"]) for r in rows if r["aggregator"] == kind)
        fit = [(math.log(n), math.log(ms)) for n, ms in pts if ms >= min_fit_ms] or [(math.log(n), math.log(ms)) for n, ms in pts]
        slope = float("nan")
        if len(fit) >= 2:
            mx, my = statistics.fmean(x for x, _ in fit), statistics.fmean(y for _, y in fit)
            slope = sum((x - mx) * (y - my) for x, y in fit) / sum((x - mx) ** 2 for x, _ in fit)
        by_len = dict(pts)
        spans = [(n, n * 8) for n in by_len if n * 8 in by_len]
        ratio = None
        if spans:
            lo, hi = max(spans)
            ratio = {"from": lo, "to": hi, "time_ratio": by_len[hi] / by_len[lo]}
        fits[kind] = {"exponent": slope, "fit_points": len(fit), "x8": ratio}
    return fits


def plot(rows: list[dict], path: Path) -> None:
    """Log-log time and memory against sequence length, one line per aggregator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for kind in dict.fromkeys(r["aggregator"] for r in rows):
        pts = sorted((r["seq_len"], r["ms"], r["peak_mib"]) for r in rows if r["aggregator"] == kind)
        n = [p[0] for p in pts]
        axes[0].loglog(n, [p[1] for p in pts], "o-", label=kind, base=2)
        axes[1].loglog(n, [max(p[2], 1e-3) for p in pts], "o-", label=kind, base=2)
    for ax, label in zip(axes, ("ms per forward+backward", "peak MiB")):
        ax.set_xlabel("tokens")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("aggregators: cost against sequence length")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_bench(kinds: list[str], seq_lens: list[int], dim: int, layers: int, heads: int, batch: int, reps: int,
              device: torch.device, out_path: Path) -> dict:
    """Bench `kinds` × `seq_lens`; write JSON, a table and a log-log plot beside it."""
    unknown = [k for k in kinds if k not in AGGREGATORS]
    if unknown:
        raise ValueError(f"unknown aggregator(s) {unknown}; registered: {sorted(AGGREGATORS)}")
    rows = []
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("aggregators", total=len(kinds) * len(seq_lens))
        for kind in kinds:
            for n in seq_lens:
                rows.append(bench_one(kind, layers, heads, dim, n, batch, reps, device))
                progress.advance(task)
    fits = scaling_exponents(rows)
    table = Table("aggregator", "seq_len", "ms", "peak MiB", title=f"forward+backward, dim {dim}, batch {batch}, {device}")
    for r in rows:
        table.add_row(r["aggregator"], str(r["seq_len"]), f"{r['ms']:.2f}", f"{r['peak_mib']:.1f}")
    out.print(table)
    for kind, fit in fits.items():
        x8 = fit["x8"]
        span = f"; {x8['from']}→{x8['to']} tokens: ×{x8['time_ratio']:.1f} time" if x8 else ""
        out.print(f"{kind}: time ∝ n^{fit['exponent']:.2f}{span}")
    missing = [k for k in BENCHED if k not in AGGREGATORS]
    meta = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__, "dim": dim,
            "layers": layers, "heads": heads, "batch": batch, "reps": reps, "not_registered": missing}
    report = {"meta": meta, "results": rows, "scaling": fits}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2))
    plot(rows, out_path.with_suffix(".png"))
    out.print(f"wrote {out_path} and {out_path.with_suffix('.png')}")
    if missing:
        out.print(f"[yellow]not registered here, so not benched: {', '.join(missing)}[/yellow]")
    return report


def aggregators_cmd(
    kinds: list[str] = typer.Option(list(BENCHED), "--kind", help="aggregators to time (default: those of transformer, crate, tost registered)"),
    seq_lens: list[int] = typer.Option([64, 128, 256, 512, 1024, 2048, 4096], "--seq-len", help="token counts"),
    dim: int = typer.Option(640, help="token width (the paper's 512 + 128)"),
    layers: int = typer.Option(3, help="aggregator layers"),
    heads: int = typer.Option(4, help="heads"),
    batch: int = typer.Option(1, help="sequences per call"),
    reps: int = typer.Option(5, min=1, help="timed calls per point (the fastest is `ms`, the median `ms_median`)"),
    device: Device = "auto",
    threads: Threads = None,
    out_path: Path = typer.Option(Path("runs/bench/aggregators.json"), "--out", help="JSON results; the plot goes beside it (.png)"),
) -> None:
    """Forward+backward time and peak memory of each aggregator against sequence length, with scaling exponents."""
    if kinds == list(BENCHED):
        kinds = [k for k in BENCHED if k in AGGREGATORS]
    dev = bench_device(device, threads)
    try:
        run_bench(kinds, sorted(set(seq_lens)), dim, layers, heads, batch, reps, dev, out_path)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
