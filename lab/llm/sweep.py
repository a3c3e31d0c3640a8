"""LR and rank sweeps: one fine-tuning run per value, every run with the same data, seed and step budget."""

from __future__ import annotations

import gc
import math
from dataclasses import replace
from pathlib import Path

from lab.llm.finetune import FinetuneSpec, domains, finetune
from lab.llm.loading import load_tokenizer

PARAMS = {"lr": float, "rank": int}


def run_sweep(model_dir: Path, spec: FinetuneSpec, param: str, values: list[float]) -> dict:
    """Fine-tune once per value of `param` ("lr" or "rank"); everything else stays as in `spec`.

    Returns {"param", "values", "runs" (each finetune result plus "value"), "final_val_loss",
    "final_train_loss", "base_val_loss" (the base model's, before fine-tuning: the control),
    "best_value" (lowest final validation loss among runs that did not diverge), "best_val_loss_drop"
    (base − that loss: what the best setting learned over the control), "val_loss_spread" (highest − lowest
    final loss among runs that did not diverge: how much the swept value matters)}.
    """
    if param not in PARAMS:
        raise ValueError(f"cannot sweep {param!r}: choose one of {', '.join(PARAMS)}")
    if not values:
        raise ValueError("give at least one value to sweep")
    data = domains(load_tokenizer(model_dir), spec)
    runs = []
    for value in values:
        model, result = finetune(model_dir, replace(spec, **{param: PARAMS[param](value)}), data=data)
        runs.append({"value": value, **result})
        del model
        gc.collect()
    finals = [r["val_loss"] if not r["curve"]["diverged"] else math.nan for r in runs]
    ok = [(v, x) for v, x in zip(values, finals) if math.isfinite(x)]
    base = runs[0]["val_loss_init"]  # every run starts from the same base model (LoRA's B = 0): the control
    best = min(ok, key=lambda t: t[1]) if ok else None
    return {"param": param, "values": list(values), "runs": runs, "final_val_loss": finals,
            "final_train_loss": [r["train_loss_final"] for r in runs], "base_val_loss": base,
            "best_value": best[0] if best else None,
            "best_val_loss_drop": base - best[1] if best else None,
            "val_loss_spread": max(x for _, x in ok) - min(x for _, x in ok) if ok else None}


def caption(result: dict) -> str:
    """One sentence on the sweep, derived from its numbers."""
    finals, values, param = result["final_val_loss"], result["values"], result["param"]
    ok = [(v, x) for v, x in zip(values, finals) if math.isfinite(x)]
    if not ok:
        return f"every {param} value diverged"
    (best, lo), (worst, hi) = min(ok, key=lambda t: t[1]), max(ok, key=lambda t: t[1])
    diverged = [f"{v:g}" for v, x in zip(values, finals) if not math.isfinite(x)]
    text = (f"{param}={best:g} reaches the lowest new-domain validation loss ({lo:.3f}); "
            f"{param}={worst:g} the highest ({hi:.3f}), a spread of {hi - lo:.3f} nats under the same budget")
    if best in (min(values), max(values)) and len(values) > 2:
        text += "; the best value is at the edge of the grid, so the optimum may lie beyond it: extend --values"
    return text + (f"; diverged: {', '.join(diverged)}" if diverged else "")
