"""LoRA and QLoRA fine-tuning (peft + bitsandbytes) of a causal LM on the second domain, stdlib source code."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lab.llm import corpus
from lab.llm.loading import device, load_model, load_tokenizer, require_causal
from lab.llm.train import encode_blocks, final_loss, train_lm

METHODS = ("lora", "qlora")

# peft 0.21 still calls a transformers 5 method that is only renamed; nothing for a user to act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


@dataclass(frozen=True)
class FinetuneSpec:
    """One fine-tuning run: method, adapter shape and the budget (steps × batch_size × ctx tokens)."""

    method: str = "lora"
    rank: int = 8
    alpha: int | None = None  # LoRA scale numerator; None → 2 × rank
    lr: float = 1e-3
    steps: int = 200
    batch_size: int = 8
    ctx: int = 128
    warmup: int = 10
    eval_every: int = 25
    max_val_blocks: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: choose lora or qlora")
        if self.rank < 1 or self.steps < 1 or self.lr <= 0:
            raise ValueError("rank and steps must be ≥ 1 and lr > 0")


@dataclass
class Domains:
    """Token blocks [N, ctx]: new-domain (code) train/val and old-domain (prose) val."""

    code_train: torch.Tensor
    code_val: torch.Tensor
    prose_val: torch.Tensor


def domains(tokenizer: PreTrainedTokenizerBase, spec: FinetuneSpec) -> Domains:
    """Blocks of both domains; prose validation is the base model's held-out prose split."""
    code_train, code_val = corpus.code_split()
    _, prose_val = corpus.prose_split()
    cut = spec.max_val_blocks
    return Domains(encode_blocks(tokenizer, code_train, spec.ctx),
                   encode_blocks(tokenizer, code_val, spec.ctx)[:cut],
                   encode_blocks(tokenizer, prose_val, spec.ctx)[:cut])


def attach_lora(model_dir: Path, spec: FinetuneSpec) -> PeftModel:
    """Load the base (NF4 for QLoRA) and wrap every linear layer but the head with a fresh LoRA adapter."""
    require_causal(model_dir)
    qlora = spec.method == "qlora"
    model = load_model(model_dir, four_bit=qlora)
    if qlora:
        _warn_unaligned(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    torch.manual_seed(spec.seed)
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha or 2 * spec.rank, lora_dropout=0.0,
                        target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _warn_unaligned(model: PreTrainedModel, blocksize: int = 64) -> None:
    """Warn when a 4-bit layer's rows do not split into NF4 blocks on CPU: bitsandbytes 0.50's CPU
    dequantisation misreads such rows (found by the NF4 oracle tests), so QLoRA there would be off."""
    import bitsandbytes as bnb

    bad = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit) and m.in_features % blocksize]
    if bad and device().type == "cpu":
        warnings.warn(f"{len(bad)} 4-bit layers (e.g. {bad[0]}) have an input size that is not a multiple of "
                      f"{blocksize}; bitsandbytes dequantises those wrongly on CPU", stacklevel=2)


def reload_adapter(model_dir: Path, adapter_dir: Path, four_bit: bool = False) -> PeftModel:
    """A saved adapter on a freshly loaded base model (NF4 when `four_bit`), ready for evaluation."""
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} holds no adapter (no adapter_config.json); "
                                "point to the adapter/ folder written by `lab llm finetune`")
    return PeftModel.from_pretrained(load_model(model_dir, four_bit=four_bit), adapter_dir)


def footprint(model: PeftModel) -> dict:
    """Parameter counts and bytes: model weights as stored (4-bit for QLoRA), adapter, AdamW state."""
    trainable, total = model.get_nb_trainable_parameters()
    adapter_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return {"trainable_params": trainable, "total_params": total, "trainable_frac": trainable / total,
            "weights_bytes": model.get_memory_footprint(), "adapter_bytes": adapter_bytes,
            "optimizer_bytes": 2 * adapter_bytes}


def train_adapter(model: PeftModel, spec: FinetuneSpec, data: Domains, out_dir: Path | None = None) -> dict:
    """Train the adapter of `model` per `spec` on code; save it to out_dir/adapter when given.

    Returns {"spec", footprint…, "curve", "val_loss_init" (the base model, the control), "val_loss",
    "val_loss_drop" (init − final), "train_loss_final",
    "peak_gpu_bytes" (GPU only), "adapter_dir" (when saved)}.
    """
    if device().type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    curve = train_lm(model, data.code_train, data.code_val, steps=spec.steps, lr=spec.lr,
                     batch_size=spec.batch_size, warmup=spec.warmup, eval_every=spec.eval_every,
                     weight_decay=0.0, seed=spec.seed, label=f"{spec.method} r={spec.rank} lr={spec.lr:g}")
    result = {"spec": asdict(spec), **footprint(model), "curve": curve, "val_loss_init": curve["val_loss"][0],
              "val_loss": curve["val_loss"][-1], "val_loss_drop": curve["val_loss"][0] - curve["val_loss"][-1],
              "train_loss_final": final_loss(curve["train_loss"])}
    if device().type == "cuda":
        result["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    if out_dir is not None:
        model.save_pretrained(out_dir / "adapter")
        result["adapter_dir"] = str(out_dir / "adapter")
    return result


def finetune(model_dir: Path, spec: FinetuneSpec, out_dir: Path | None = None,
             data: Domains | None = None) -> tuple[PeftModel, dict]:
    """Attach a fresh adapter to `model_dir` and train it (see train_adapter); returns (model, results)."""
    model = attach_lora(model_dir, spec)
    data = data or domains(load_tokenizer(model_dir), spec)
    return model, train_adapter(model, spec, data, out_dir)
