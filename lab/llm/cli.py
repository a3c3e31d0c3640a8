"""`lab llm …` commands. Thin: parse options, call lab.llm, render a rich summary table.

Library modules are imported inside each command so that `lab --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)  # name and help: lab.cli.DEFERRED
sweep_app = typer.Typer(help="Fine-tuning sweeps under one budget: `lr` or `rank`.", no_args_is_help=True,
                        rich_markup_mode=None)
app.add_typer(sweep_app, name="sweep")
console = Console()

MODEL_HELP = "local Hugging Face model dir (default: runs/llm/base, made by `lab llm base`)"


def _friendly(fn: Callable) -> Callable:
    """Turn bad-input errors (LabError, and the ValueError / OSError of a bad option or path) into one red
    line and exit code 2 instead of a traceback."""
    @wraps(fn)
    def run(*args, **kwargs):
        from lab.errors import LabError

        try:
            return fn(*args, **kwargs)
        except (LabError, ValueError, OSError) as err:
            console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
            raise typer.Exit(2) from None
    return run


def _table(title: str, columns: list[str], rows: Iterable[Iterable]) -> None:
    """Print a rich table; floats with 4 significant digits."""
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def _threads(n: Optional[int]) -> None:
    """Cap torch's CPU threads (the machines are shared)."""
    if n:
        import torch

        torch.set_num_threads(n)


@app.command()
@_friendly
def base(out: Path = typer.Option(Path("runs/llm/base"), help="where to save model, tokenizer, results"),
         arch: str = typer.Option("llama", help="llama or qwen2"),
         steps: int = typer.Option(400, min=1), vocab: int = typer.Option(2048, min=300),
         hidden: int = typer.Option(192, min=8), layers: int = typer.Option(4, min=1),
         heads: int = typer.Option(6, min=1), kv_heads: Optional[int] = typer.Option(None, help="default: heads"),
         intermediate: int = typer.Option(512, min=8), ctx: int = typer.Option(128, min=8),
         batch: int = typer.Option(16, min=1), lr: float = typer.Option(3e-3), seed: int = 0,
         threads: Optional[int] = typer.Option(None, help="torch CPU threads")) -> None:
    """Train the embedded base model (~2 min on 2 CPU threads) on pydoc topics + stdlib docstrings."""
    from lab.llm import plots
    from lab.llm.base import BaseSpec, train_base
    from lab.llm.results import write_results

    _threads(threads)
    spec = BaseSpec(arch=arch, vocab_size=vocab, hidden=hidden, layers=layers, heads=heads,
                    kv_heads=kv_heads or heads, intermediate=intermediate, ctx=ctx, steps=steps,
                    batch_size=batch, lr=lr, seed=seed)
    res = train_base(spec, out)
    plots.loss_curves({"base": res["curve"]}, out / "loss.png", f"base model ({res['params'] / 1e6:.2f} M params)",
                      control=("unigram model, validation", res["val_loss_unigram"]))
    write_results(out, res, seed, "llm-base")
    _table(f"base model → {out}", ["params", "vocab", "chars/token", "steps", "val loss (init → final)",
                                    "tokens/s", "wall s"],
           [[res["params"], res["vocab"], res["chars_per_token"], res["curve"]["steps"],
             f"{res['val_loss_init']:.3f} → {res['val_loss']:.3f}", res["curve"]["tokens_per_s"],
             res["curve"]["wall_s"]]])


MODEL = typer.Option(None, "--model", help=MODEL_HELP)
THREADS = typer.Option(None, "--threads", help="torch CPU threads")
RANK = typer.Option(8, "--rank", min=1, help="LoRA rank")
LR = typer.Option(1e-3, "--lr", help="learning rate (AdamW, cosine schedule)")
BATCH = typer.Option(8, "--batch", min=1, help="sequences per step")
CTX = typer.Option(128, "--ctx", min=8, help="tokens per sequence")
SEED = typer.Option(0, "--seed")


def _finetune_spec(method: str, rank: int, lr: float, steps: int, batch: int, ctx: int, seed: int):
    from lab.llm.finetune import FinetuneSpec

    return FinetuneSpec(method=method, rank=rank, lr=lr, steps=steps, batch_size=batch, ctx=ctx,
                        eval_every=max(1, steps // 8), seed=seed)


@app.command()
@_friendly
def finetune(model: Optional[str] = MODEL,
             method: list[str] = typer.Option(["lora", "qlora"], "--method", help="lora and/or qlora (repeat)"),
             rank: int = RANK, lr: float = LR, steps: int = typer.Option(200, min=1), batch: int = BATCH,
             ctx: int = CTX, seed: int = SEED, out: Path = typer.Option(Path("runs/llm/finetune")),
             threads: Optional[int] = THREADS) -> None:
    """LoRA / QLoRA (NF4 + double quant) on stdlib source code: curves, adapters, parameter and memory counts."""
    from lab.llm import plots
    from lab.llm.finetune import finetune as run
    from lab.llm.loading import resolve
    from lab.llm.results import write_results

    _threads(threads)
    path = resolve(model, causal=True)
    runs = {}
    for m in dict.fromkeys(method):
        _, runs[m] = run(path, _finetune_spec(m, rank, lr, steps, batch, ctx, seed), out / m)
    plots.loss_curves({m: r["curve"] for m, r in runs.items()}, out / "loss.png",
                      f"fine-tuning on stdlib source: rank {rank}, lr {lr:g}, {steps} steps")
    summary = {"model": str(path), "runs": runs, **{f"{m}_val_loss": r["val_loss"] for m, r in runs.items()},
               **{f"{m}_weights_bytes": r["weights_bytes"] for m, r in runs.items()}}
    if {"lora", "qlora"} <= runs.keys():  # NF4's footprint against the float weights measured in the same run
        summary["qlora_weights_ratio"] = runs["qlora"]["weights_bytes"] / runs["lora"]["weights_bytes"]
    write_results(out, summary, seed, "llm-finetune")
    _table(f"fine-tuning on code → {out}",
           ["method", "trainable", "weights MB", "adapter+AdamW KB", "val loss init → final", "train loss", "s/step"],
           [[m, f"{r['trainable_params']:,} ({r['trainable_frac']:.1%})", r["weights_bytes"] / 2**20,
             (r["adapter_bytes"] + r["optimizer_bytes"]) / 2**10, f"{r['val_loss_init']:.3f} → {r['val_loss']:.3f}",
             r["train_loss_final"], r["curve"]["wall_s"] / max(1, r["curve"]["steps"])] for m, r in runs.items()])


def _sweep(param: str, values: str, model: Optional[str], method: str, rank: int, lr: float, steps: int,
           batch: int, ctx: int, seed: int, out: Path, threads: Optional[int]) -> None:
    """Shared body of `sweep lr` and `sweep rank`."""
    from lab.llm import plots
    from lab.llm.loading import resolve
    from lab.llm.results import write_results
    from lab.llm.sweep import PARAMS, caption, run_sweep

    try:
        vals = [PARAMS[param](float(v)) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--values must be comma-separated numbers, got {values!r}") from None
    _threads(threads)
    path = resolve(model, causal=True)
    res = run_sweep(path, _finetune_spec(method, rank, lr, steps, batch, ctx, seed), param, vals)
    res["caption"] = caption(res)
    plots.sweep(param, vals, [r["curve"] for r in res["runs"]], res["final_val_loss"], out / f"sweep_{param}.png",
                res["caption"])
    write_results(out, {"model": str(path), **res}, seed, f"llm-sweep-{param}")
    _table(f"{method} {param} sweep, {steps} steps each → {out}",
           [param, "val loss init", "val loss final", "train loss final", "trainable params", "diverged"],
           [[f"{r['value']:g}", r["val_loss_init"], r["val_loss"], r["train_loss_final"], f"{r['trainable_params']:,}",
             r["curve"]["diverged"]] for r in res["runs"]])
    console.print(escape(res["caption"]), soft_wrap=True)


METHOD = typer.Option("lora", "--method", help="lora or qlora")
SWEEP_STEPS = typer.Option(60, "--steps", min=1, help="steps per run (the same budget for every run)")


@sweep_app.command("lr")
@_friendly
def sweep_lr(values: str = typer.Option("1e-5,2e-4,1e-3,5e-3,1e-2,2e-2,5e-2", help="comma-separated learning rates"),
             model: Optional[str] = MODEL, method: str = METHOD, rank: int = RANK, steps: int = SWEEP_STEPS,
             batch: int = BATCH, ctx: int = CTX, seed: int = SEED,
             out: Path = typer.Option(Path("runs/llm/sweep-lr")), threads: Optional[int] = THREADS) -> None:
    """Learning-rate sweep at a fixed LoRA rank and step budget."""
    _sweep("lr", values, model, method, rank, 1e-3, steps, batch, ctx, seed, out, threads)


@sweep_app.command("rank")
@_friendly
def sweep_rank(values: str = typer.Option("8,16,32,64", help="comma-separated LoRA ranks"),
               model: Optional[str] = MODEL, method: str = METHOD, lr: float = LR, steps: int = SWEEP_STEPS,
               batch: int = BATCH, ctx: int = CTX, seed: int = SEED,
               out: Path = typer.Option(Path("runs/llm/sweep-rank")), threads: Optional[int] = THREADS) -> None:
    """LoRA-rank sweep at a fixed learning rate and step budget (alpha = 2 × rank)."""
    _sweep("rank", values, model, method, 8, lr, steps, batch, ctx, seed, out, threads)


@app.command()
@_friendly
def forgetting(model: Optional[str] = MODEL, method: str = METHOD, rank: int = RANK, lr: float = LR,
               steps: int = typer.Option(200, min=1), batch: int = BATCH, ctx: int = CTX, seed: int = SEED,
               out: Path = typer.Option(Path("runs/llm/forgetting")), threads: Optional[int] = THREADS,
               control: bool = typer.Option(True, "--control/--no-control",
                                            help="also fine-tune the same way on prose (the old domain): the control "
                                                 "whose prose-loss change forgetting is compared with")) -> None:
    """Old-domain (prose) and new-domain (code) loss and next-token probes before and after fine-tuning."""
    from lab.llm import plots
    from lab.llm.forgetting import caption, run_forgetting
    from lab.llm.loading import resolve
    from lab.llm.results import write_results

    _threads(threads)
    path = resolve(model, causal=True)
    res = run_forgetting(path, _finetune_spec(method, rank, lr, steps, batch, ctx, seed), out, control)
    res["caption"] = caption(res)
    table = {k: (res["before"][k], res["after"][k]) for k in res["before"]}
    plots.forgetting(table, out / "forgetting.png", res["caption"],
                     f"forgetting: {method} rank {rank}, lr {lr:g}, {steps} steps on code",
                     res["control"]["after"] if control else None)
    write_results(out, {"model": str(path), **res}, seed, "llm-forgetting")
    _table(f"forgetting: {method} r={rank} lr={lr:g}, {steps} steps on code → {out}",
           ["metric", "before", "after", "change"], [[k, b, a, f"{a - b:+.4f}"] for k, (b, a) in table.items()])
    console.print(escape(res["caption"]), soft_wrap=True)


@app.command()
@_friendly
def attention(model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP + "; or `minilm`"),
              adapter: Optional[Path] = typer.Option(None, help="adapter dir from `lab llm finetune` to compare"),
              prompt: Optional[str] = typer.Option(None, help="text for the heatmaps"),
              blocks: int = typer.Option(16, min=1, help="held-out blocks for the per-head statistics"),
              ctx: int = typer.Option(64, min=4), out: Path = typer.Option(Path("runs/llm/attention")),
              threads: Optional[int] = THREADS) -> None:
    """Attention heatmaps, all-head grid, per-head entropy/distance, base vs fine-tuned divergence."""
    from lab.llm.attention import DEFAULT_PROMPT, run_attention
    from lab.llm.finetune import reload_adapter
    from lab.llm.loading import load_model, load_tokenizer, resolve
    from lab.llm.results import write_results
    from lab.llm.train import heldout_blocks

    _threads(threads)
    path = resolve(model)
    tokenizer = load_tokenizer(path)
    tuned = reload_adapter(path, adapter) if adapter else None
    res = run_attention(load_model(path), tokenizer, prompt or DEFAULT_PROMPT,
                        heldout_blocks(tokenizer, ctx, blocks), out, tuned)
    write_results(out, {"model": str(path), "adapter": str(adapter) if adapter else None, **res}, 0, "llm-attention")
    stats = {k: res[k] for k in ("entropy", "distance", "prev_token", "first_token")}
    _table(f"attention of {path} (per layer, mean over heads) → {out}",
           ["layer", "entropy", "distance", "prev-token", "first-token"]
           + (["JS vs fine-tuned"] if tuned is not None else []),
           [[i, *(sum(stats[k][i]) / len(stats[k][i]) for k in stats)]
            + ([sum(res["divergence"][i]) / len(res["divergence"][i])] if tuned is not None else [])
            for i in range(res["layers"])])
    for name, text in res["captions"].items():
        console.print(f"[bold]{name}[/bold]: {escape(text)}", soft_wrap=True)


@app.command()
@_friendly
def activations(model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP + "; or `minilm`"),
                blocks: int = typer.Option(64, min=4, help="held-out blocks (half prose, half code)"),
                ctx: int = typer.Option(64, min=4), seed: int = SEED,
                out: Path = typer.Option(Path("runs/llm/activations")), threads: Optional[int] = THREADS) -> None:
    """Residual stream per layer: norms, anisotropy, attention vs MLP update, positions, linear probes."""
    from lab.llm.activations import run_activations
    from lab.llm.loading import load_model, load_tokenizer, resolve
    from lab.llm.results import write_results
    from lab.llm.train import heldout_blocks

    _threads(threads)
    path = resolve(model)
    tokenizer = load_tokenizer(path)
    res = run_activations(load_model(path), tokenizer, heldout_blocks(tokenizer, ctx, blocks), out, seed)
    write_results(out, {"model": str(path), **res}, seed, "llm-activations")
    n = len(res["norm"])
    _table(f"residual stream of {path} → {out} (probes: test accuracy; random init, control task in brackets; "
           "* = point chosen on validation)",
           ["point", "norm", "anisotropy", "attn share", *(f"probe {k}" for k in res["probe_trained"])],
           [[i, res["norm"][i], res["anisotropy"][i], res["attn_share"][i - 1] if i else "-",
             *(f"{res['probe_trained'][k]['test'][i]:.3f}{'*' if res['probe_point'][k] == i else ''} "
               f"({res['probe_random_init'][k]['test'][i]:.3f}, {res['probe_control_task'][k]['test'][i]:.3f})"
               for k in res["probe_trained"])] for i in range(n)])
    for name, text in res["captions"].items():
        console.print(f"[bold]{name}[/bold]: {escape(text)}", soft_wrap=True)
