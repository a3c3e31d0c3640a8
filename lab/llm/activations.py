"""Residual stream via forward hooks: per-layer norms, anisotropy, attention vs MLP updates, positions, probes.

Hooks are hand-written because they must sit at architecture-specific points (before a layer, where its
attention block ends, after its MLP); the probes themselves are scikit-learn logistic regressions.
"""

from __future__ import annotations

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


def probe_accuracy(points: torch.Tensor, labels: np.ndarray, seed: int = 0) -> list[float]:
    """Held-out accuracy of a logistic-regression probe at each residual point.

    points [P, B, T, D] (positions 1.. are used), labels [B, T-1]; the first 3/4 of the blocks train
    the probe, the rest test it, so no block is in both.
    """
    n_train = max(1, round(points.shape[1] * 0.75))
    y_train, y_test = labels[:n_train].reshape(-1), labels[n_train:].reshape(-1)
    accs = []
    for p in points[:, :, 1:].numpy():
        x_train, x_test = p[:n_train].reshape(len(y_train), -1), p[n_train:].reshape(len(y_test), -1)
        if len(np.unique(y_train)) < 2:
            accs.append(float(np.mean(y_test == y_train[0])))
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.1, random_state=seed))
        accs.append(float(probe.fit(x_train, y_train).score(x_test, y_test)))
    return accs


def random_init_like(model: PreTrainedModel, seed: int = 0) -> PreTrainedModel:
    """The same architecture with fresh random weights: the probes' control."""
    torch.manual_seed(seed)
    auto = AutoModelForCausalLM if hasattr(model, "lm_head") else AutoModel
    return auto.from_config(model.config).to(next(model.parameters()).device)


def probe_caption(trained: dict, control: dict, majority: dict) -> str:
    """Per property: best layer and accuracy of the trained model vs the control's best and the majority rate."""
    parts = []
    for name, accs in trained.items():
        best = int(np.argmax(accs))
        parts.append(f"{name}: {accs[best]:.2f} at point {best} vs random init ≤{max(control[name]):.2f} "
                     f"(majority {majority[name]:.2f})")
    return "; ".join(parts)


def run_activations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, blocks: torch.Tensor,
                    out_dir: Path, seed: int = 0) -> dict:
    """All residual-stream analyses of `model` on blocks [N, T]; writes residual_layers.png,
    residual_positions.png and probes.png to out_dir and returns the numbers; the probes' controls are
    the majority class and the random-init twin (`probe_gain_over_*`: best point trained − control)."""
    res = residual_stream(model, blocks)
    metrics = layer_metrics(res)
    points = residual_points(res)
    labels = token_properties(tokenizer, blocks)
    n_train = max(1, round(len(blocks) * 0.75))
    majority = {k: float(max(v[n_train:].mean(), 1 - v[n_train:].mean())) for k, v in labels.items()}
    trained = {k: probe_accuracy(points, v, seed) for k, v in labels.items()}
    control_points = residual_points(residual_stream(random_init_like(model, seed), blocks))
    control = {k: probe_accuracy(control_points, v, seed) for k, v in labels.items()}
    share = metrics["attn_share"]
    layer_caption = (f"anisotropy {metrics['anisotropy'][0]:.2f} at the embeddings → {metrics['anisotropy'][-1]:.2f} "
                     f"after the last layer; attention makes {min(share):.0%}–{max(share):.0%} of the per-layer "
                     f"update (the MLP the rest)")
    ratio = metrics["first_token_norm_ratio"]
    pos_caption = (f"first-token norm / mean of the others: {max(ratio):.2f}x at its largest "
                   f"(point {int(np.argmax(ratio))})")
    captions = {"layers": layer_caption, "positions": pos_caption, "probes": probe_caption(trained, control, majority)}
    figures = [
        plots.layer_stats({"residual norm": (list(range(len(share) + 1)), metrics["norm"]),
                           "anisotropy": (list(range(len(share) + 1)), metrics["anisotropy"]),
                           "attention share of layer update": (list(range(1, len(share) + 1)), share)},
                          out_dir / "residual_layers.png", layer_caption),
        plots.position_norms(np.array(metrics["norm_by_position"]), out_dir / "residual_positions.png", pos_caption),
        plots.probes(trained, control, majority, out_dir / "probes.png", captions["probes"]),
    ]
    best = {k: max(v) for k, v in trained.items()}  # the best read-out point, trained and controls
    return {"blocks": list(blocks.shape), **metrics, "probe_majority": majority, "probe_trained": trained,
            "probe_random_init": control,
            "probe_gain_over_random_init": {k: best[k] - max(control[k]) for k in best},
            "probe_gain_over_majority": {k: best[k] - majority[k] for k in best},
            "captions": captions, "figures": [str(f) for f in figures]}
