"""Residual stream via forward hooks: per-layer norms, anisotropy, attention vs MLP updates, positions, probes.

Hooks are hand-written because they must sit at architecture-specific points (before a layer, where its
attention block ends, after its MLP); the probes themselves are scikit-learn logistic regressions.

Probe protocol (issue 22, finding 10; Hewitt & Liang 2019, "Designing and interpreting probes with control
tasks"): the blocks are split by a seeded permutation into train (60 %), validation (20 %) and test (20 %);
a probe is fitted on train at every residual point, the point is chosen on validation accuracy, and only
its test accuracy is reported. Two controls: the random-initialisation twin (its own point, chosen on its
own validation split) and a control task — each token type is given a random label (drawn once per seed
with the property's base rate) and a position's control label is that of the token the property reads,
the previous one; the probe's selectivity is its test accuracy minus the control task's at the same point.
A probe that could memorise token types would score on the control task too; a selective one does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import AutoModel, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from lab.llm import plots
from lab.llm.loading import ModelError

# Modules whose *input* is the residual stream after the attention block (pre-norm decoders: Llama/Qwen2/
# Mistral name it post_attention_layernorm, GPT-2 ln_2). Post-norm BERT layers instead expose it as the
# output of `attention` (residual + LayerNorm already applied).
_PRE_MLP_NORMS = ("post_attention_layernorm", "ln_2")


def decoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The model's stack of transformer layers: the ModuleList with num_hidden_layers entries."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise ModelError(f"found no list of {n} transformer layers in {type(model).__name__}")


@torch.no_grad()
def residual_stream(model: PreTrainedModel, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Residual stream of every layer for ids [B, T] via hooks: "pre" (layer input), "mid" (after attention),
    "post" (after the MLP), each float32 [L, B, T, D] on the CPU."""
    layers = decoder_layers(model)
    store: dict[str, list] = {"pre": [None] * len(layers), "mid": [None] * len(layers), "post": [None] * len(layers)}

    def first(x):
        return (x[0] if isinstance(x, (tuple, list)) else x).detach().float().cpu()

    def keep_input(kind: str, i: int):
        return lambda module, args, kwargs: store[kind].__setitem__(i, first(args or kwargs["hidden_states"]))

    def keep_output(kind: str, i: int):
        return lambda module, args, output: store[kind].__setitem__(i, first(output))

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(keep_input("pre", i), with_kwargs=True))
        handles.append(layer.register_forward_hook(keep_output("post", i)))
        norm = next((getattr(layer, n) for n in _PRE_MLP_NORMS if hasattr(layer, n)), None)
        if norm is not None:
            handles.append(norm.register_forward_pre_hook(keep_input("mid", i), with_kwargs=True))
        elif hasattr(layer, "attention"):
            handles.append(layer.attention.register_forward_hook(keep_output("mid", i)))
        else:
            raise ModelError(f"cannot tell where attention ends in {type(layer).__name__}")
    try:
        model.eval()
        model(input_ids=ids.to(next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return {k: torch.stack(v) for k, v in store.items()}


def residual_points(res: dict[str, torch.Tensor]) -> torch.Tensor:
    """Residual points [L+1, B, T, D]: the embeddings (first layer's input), then each layer's output."""
    return torch.cat([res["pre"][:1], res["post"]])


def anisotropy(x: torch.Tensor) -> float:
    """Mean cosine similarity between distinct token vectors x [N, D] (0: isotropic, 1: all aligned)."""
    u = torch.nn.functional.normalize(x.double(), dim=-1)
    n = len(u)
    return float((u.sum(0).square().sum() - n) / (n * (n - 1)))


def layer_metrics(res: dict[str, torch.Tensor]) -> dict:
    """Per residual point (embeddings + after each layer) and per layer: norms, anisotropy, updates, positions."""
    points = residual_points(res)  # [L+1, B, T, D]
    flat = points.flatten(1, 2)  # [L+1, B·T, D]
    attn_update = (res["mid"] - res["pre"]).norm(dim=-1).mean((1, 2))
    mlp_update = (res["post"] - res["mid"]).norm(dim=-1).mean((1, 2))
    by_pos = points.norm(dim=-1).mean(1)  # [L+1, T]
    return {"norm": flat.norm(dim=-1).mean(1).tolist(), "anisotropy": [anisotropy(f) for f in flat],
            "attn_update": attn_update.tolist(), "mlp_update": mlp_update.tolist(),
            "attn_share": (attn_update / (attn_update + mlp_update)).tolist(),
            "norm_by_position": by_pos.tolist(),
            "first_token_norm_ratio": (by_pos[:, 0] / by_pos[:, 1:].mean(1)).tolist()}


def token_properties(tokenizer: PreTrainedTokenizerBase, ids: torch.Tensor) -> dict[str, np.ndarray]:
    """Binary labels [B, T-1] for positions 1..T-1, each about the *context*, not the token itself, so that
    a random-init model's embeddings cannot encode them: the token one (two) back is a word (letters
    only), an opening bracket earlier in the block is still open."""
    text = [[tokenizer.decode([i]) for i in row] for row in ids.tolist()]
    word = np.array([[t.strip().isalpha() for t in row] for row in text])
    depth = np.array([np.cumsum([t.count("(") + t.count("[") - t.count(")") - t.count("]") for t in row])
                      for row in text])
    two_back = np.concatenate([np.zeros((len(word), 1), dtype=bool), word[:, :-2]], axis=1)
    return {"prev_is_word": word[:, :-1], "prev2_is_word": two_back, "in_brackets": depth[:, :-1] > 0}


@dataclass(frozen=True)
class Split:
    """Block indices of the probe splits (seeded permutation of the blocks: 60 / 20 / 20 %)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_blocks(n: int, seed: int) -> Split:
    """Train / validation / test block indices for n ≥ 3 blocks, no block in two splits."""
    if n < 3:
        raise ValueError(f"the probes need at least 3 blocks (train, validation, test), got {n}: raise --blocks")
    order = np.random.default_rng(seed).permutation(n)
    n_val = n_test = max(1, round(0.2 * n))
    return Split(order[: n - n_val - n_test], order[n - n_val - n_test: n - n_test], order[n - n_test:])


def control_task(ids: torch.Tensor, labels: np.ndarray, train: np.ndarray, seed: int) -> np.ndarray:
    """Hewitt & Liang's control labels [B, T-1] for a property labels [B, T-1] of positions 1..T-1.

    Every token type gets a fixed random label, 1 with the property's rate on the train blocks; a
    position's control label is the label of the token before it (the token the property reads). ids: [B, T]."""
    rate = float(labels[train].mean())
    vocab = int(ids.max()) + 1
    per_type = np.random.default_rng(seed + 17).random(vocab) < rate
    return per_type[ids[:, :-1].numpy()]


def probe_accuracy(points: torch.Tensor, labels: np.ndarray, split: Split, seed: int = 0) -> dict[str, list[float]]:
    """Validation and test accuracy of a logistic-regression probe at each residual point.

    points [P, B, T, D] (positions 1.. are used), labels [B, T-1]; fitted on split.train's blocks.
    Returns {"val": [P], "test": [P]}."""
    y = {name: labels[getattr(split, name)].reshape(-1) for name in ("train", "val", "test")}
    out: dict[str, list[float]] = {"val": [], "test": []}
    for p in points[:, :, 1:].numpy():
        x = {name: p[getattr(split, name)].reshape(len(y[name]), -1) for name in y}
        if len(np.unique(y["train"])) < 2:
            for name in out:
                out[name].append(float(np.mean(y[name] == y["train"][0])))
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.1, random_state=seed))
        probe.fit(x["train"], y["train"])
        for name in out:
            out[name].append(float(probe.score(x[name], y[name])))
    return out


def chosen(accs: dict[str, list[float]]) -> tuple[int, float]:
    """The point with the best validation accuracy (the first on ties) and its test accuracy."""
    best = int(np.argmax(accs["val"]))
    return best, accs["test"][best]


def random_init_like(model: PreTrainedModel, seed: int = 0) -> PreTrainedModel:
    """The same architecture with fresh random weights: the probes' control."""
    torch.manual_seed(seed)
    auto = AutoModelForCausalLM if hasattr(model, "lm_head") else AutoModel
    return auto.from_config(model.config).to(next(model.parameters()).device)


def probe_caption(results: dict) -> str:
    """Per property: the point chosen on validation, its test accuracy, and the controls'."""
    parts = []
    for name, point in results["probe_point"].items():
        parts.append(f"{name}: {results['probe_test'][name]:.2f} at point {point} (chosen on validation) vs random init "
                     f"{results['probe_random_init_test'][name]:.2f}, control task {results['probe_control_test'][name]:.2f} "
                     f"(selectivity {results['probe_selectivity'][name]:+.2f}), majority {results['probe_majority'][name]:.2f}")
    return "; ".join(parts)


def probe_suite(points: torch.Tensor, control_points: torch.Tensor, blocks: torch.Tensor,
                labels: dict[str, np.ndarray], seed: int) -> dict:
    """Every probe of every property at every point, the trained model's and both controls', with the
    points chosen on validation and the gates' figures (test accuracies at those points)."""
    split = split_blocks(len(blocks), seed)
    out: dict = {"probe_split": {k: len(getattr(split, k)) for k in ("train", "val", "test")}, "probe_majority": {},
                 "probe_trained": {}, "probe_random_init": {}, "probe_control_task": {}, "probe_point": {},
                 "probe_test": {}, "probe_random_init_test": {}, "probe_control_test": {}}
    for name, y in labels.items():
        rate = float(y[split.test].mean())
        out["probe_majority"][name] = max(rate, 1 - rate)
        trained = probe_accuracy(points, y, split, seed)
        control = probe_accuracy(control_points, y, split, seed)
        task = probe_accuracy(points, control_task(blocks, y, split.train, seed), split, seed)
        point, test = chosen(trained)
        out["probe_trained"][name], out["probe_random_init"][name], out["probe_control_task"][name] = trained, control, task
        out["probe_point"][name], out["probe_test"][name] = point, test
        out["probe_random_init_test"][name] = chosen(control)[1]
        out["probe_control_test"][name] = task["test"][point]
    for key, control in (("random_init", "probe_random_init_test"), ("majority", "probe_majority")):
        out[f"probe_gain_over_{key}"] = {k: out["probe_test"][k] - out[control][k] for k in labels}
    out["probe_selectivity"] = {k: out["probe_test"][k] - out["probe_control_test"][k] for k in labels}
    return out


def run_activations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, blocks: torch.Tensor,
                    out_dir: Path, seed: int = 0) -> dict:
    """All residual-stream analyses of `model` on blocks [N, T]; writes residual_layers.png,
    residual_positions.png and probes.png to out_dir and returns the numbers. Probes (module docstring):
    `probe_test` at the point chosen on validation; `probe_gain_over_random_init`, `probe_gain_over_majority`
    and `probe_selectivity` (over the control task) are that test accuracy minus each control's."""
    res = residual_stream(model, blocks)
    metrics = layer_metrics(res)
    labels = token_properties(tokenizer, blocks)
    control_points = residual_points(residual_stream(random_init_like(model, seed), blocks))
    probes = probe_suite(residual_points(res), control_points, blocks, labels, seed)
    share = metrics["attn_share"]
    layer_caption = (f"anisotropy {metrics['anisotropy'][0]:.2f} at the embeddings → {metrics['anisotropy'][-1]:.2f} "
                     f"after the last layer; attention makes {min(share):.0%}–{max(share):.0%} of the per-layer "
                     f"update (the MLP the rest)")
    ratio = metrics["first_token_norm_ratio"]
    pos_caption = (f"first-token norm / mean of the others: {max(ratio):.2f}x at its largest "
                   f"(point {int(np.argmax(ratio))})")
    captions = {"layers": layer_caption, "positions": pos_caption, "probes": probe_caption(probes)}
    figures = [
        plots.layer_stats({"residual norm": (list(range(len(share) + 1)), metrics["norm"]),
                           "anisotropy": (list(range(len(share) + 1)), metrics["anisotropy"]),
                           "attention share of layer update": (list(range(1, len(share) + 1)), share)},
                          out_dir / "residual_layers.png", layer_caption),
        plots.position_norms(np.array(metrics["norm_by_position"]), out_dir / "residual_positions.png", pos_caption),
        plots.probes(probes, out_dir / "probes.png", captions["probes"]),
    ]
    return {"blocks": list(blocks.shape), **metrics, **probes, "captions": captions,
            "figures": [str(f) for f in figures]}
