"""The embedded base model: a few-million-parameter Llama/Qwen2-style causal LM trained on stdlib prose."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, Qwen2Config, Qwen2ForCausalLM

from lab.llm import corpus
from lab.llm.loading import device
from lab.llm.tokenizer import train_bpe
from lab.llm.train import encode_blocks, final_loss, train_lm, unigram_loss

ARCHS = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}


@dataclass
class BaseSpec:
    """Architecture, tokenizer and training budget of the base model (defaults: ~2 min on 2 CPU threads)."""

    arch: str = "llama"
    vocab_size: int = 2048
    hidden: int = 192
    layers: int = 4
    heads: int = 6
    kv_heads: int = 6
    intermediate: int = 512
    ctx: int = 128
    steps: int = 400
    batch_size: int = 16
    lr: float = 3e-3
    warmup: int = 30
    eval_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}: choose one of {', '.join(ARCHS)}")
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise ValueError(f"hidden ({self.hidden}) must divide by heads ({self.heads}) "
                             f"and heads by kv_heads ({self.kv_heads})")


def build_model(spec: BaseSpec, vocab_size: int, eos_id: int) -> PreTrainedModel:
    """A randomly initialised (seeded) causal LM of `spec`'s shape with tied input/output embeddings."""
    config_cls, model_cls = ARCHS[spec.arch]
    config = config_cls(vocab_size=vocab_size, hidden_size=spec.hidden, intermediate_size=spec.intermediate,
                        num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                        num_key_value_heads=spec.kv_heads, max_position_embeddings=spec.ctx,
                        tie_word_embeddings=True, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
                        attn_implementation="eager")
    torch.manual_seed(spec.seed)
    return model_cls(config)


def train_base(spec: BaseSpec, out_dir: Path) -> dict:
    """Train the tokenizer and the model on prose, save both in HF format to `out_dir`, return the results."""
    train_texts, val_texts = corpus.prose_split()
    tokenizer = train_bpe(train_texts, spec.vocab_size)
    train, val = (encode_blocks(tokenizer, t, spec.ctx) for t in (train_texts, val_texts))
    model = build_model(spec, len(tokenizer), tokenizer.eos_token_id).to(device())
    curve = train_lm(model, train, val, steps=spec.steps, lr=spec.lr, batch_size=spec.batch_size,
                     warmup=spec.warmup, eval_every=spec.eval_every, seed=spec.seed, label="base")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    unigram = unigram_loss(train, val, len(tokenizer))  # the control: token frequencies, no context
    val_chars = sum(len(t) for t in val_texts)
    val_tokens = sum(len(ids) for ids in tokenizer(val_texts, add_special_tokens=False)["input_ids"])
    return {"spec": asdict(spec), "params": model.num_parameters(), "vocab": len(tokenizer),
            "train_tokens": train.numel(), "val_tokens": val.numel(), "chars_per_token": val_chars / val_tokens,
            "val_loss_init": curve["val_loss"][0], "val_loss": curve["val_loss"][-1],
            "val_loss_unigram": unigram, "gain_over_unigram": unigram - curve["val_loss"][-1],
            "train_loss_final": final_loss(curve["train_loss"]),
            "curve": curve}
