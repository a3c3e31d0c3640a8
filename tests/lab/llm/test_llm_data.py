"""Offline corpora, tokenizer, token blocks and the training loop."""

from __future__ import annotations

import ast

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lab.llm import corpus
from lab.llm.tokenizer import train_bpe
from lab.llm.train import encode_blocks, eval_loss, final_loss, train_lm


def test_corpora_are_large_disjoint_and_deterministic():
    prose, code = corpus.prose_texts(), corpus.code_texts()
    assert sum(map(len, prose)) > 1_000_000 and sum(map(len, code)) > 300_000
    for src in code[:5]:
        ast.parse(src)  # the code domain is real Python source
    train, val = corpus.prose_split()
    assert set(train).isdisjoint(val) and len(val) == round(0.05 * len(prose))
    assert corpus.prose_split() == (train, val)


def test_arithmetic_lines_are_correct():
    for block in corpus.arithmetic_texts(60, seed=3):
        for line in block.splitlines():
            lhs, rhs = line.split(" = ")
            assert eval(lhs) == int(rhs)  # noqa: S307 - our own generated "a op b" strings


@pytest.fixture(scope="module")
def tok():
    return train_bpe(corpus.prose_texts()[:300], vocab_size=400)


def test_byte_level_bpe_round_trips_any_text(tok):
    text = "def f(x):\n    return x ** 2  # ünïcode ✓"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert len(tok) <= 400 and tok.eos_token == "<|endoftext|>"
    assert len(ids) < len(text.encode())  # merges compress


def test_blocks_and_a_loop_that_learns(tok):
    blocks = encode_blocks(tok, corpus.prose_texts()[:50], ctx=32)
    assert blocks.dtype == torch.long and blocks.shape[1] == 32
    with pytest.raises(ValueError, match="not enough"):
        encode_blocks(tok, ["hi"], ctx=32)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=32))
    one = blocks[:2]  # memorise two blocks: the loss must fall well below its start
    curve = train_lm(model, one, one, steps=40, lr=1e-2, batch_size=2, warmup=2, eval_every=20)
    assert curve["val_steps"] == [0, 20, 40] and len(curve["train_loss"]) == 40 and not curve["diverged"]
    assert curve["val_loss"][-1] < 0.5 * curve["val_loss"][0]
    assert eval_loss(model, one) == pytest.approx(curve["val_loss"][-1], rel=1e-5)
    assert final_loss([1.0, 2.0, 3.0], window=2) == 2.5


def test_base_spec_builds_llama_and_qwen2_and_rejects_the_rest():
    from lab.llm.base import BaseSpec, build_model

    for arch in ("llama", "qwen2"):
        spec = BaseSpec(arch=arch, hidden=32, layers=1, heads=4, kv_heads=2, intermediate=64, ctx=16)
        model = build_model(spec, vocab_size=300, eos_id=0)
        assert model.config.model_type == arch and model.config.tie_word_embeddings
        assert model(input_ids=torch.zeros(1, 8, dtype=torch.long)).logits.shape == (1, 8, 300)
    with pytest.raises(ValueError, match="unknown arch"):
        BaseSpec(arch="gpt5")
