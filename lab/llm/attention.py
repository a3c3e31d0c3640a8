"""Attention maps (eager attention), per-head statistics, base vs fine-tuned divergence, auto-written captions.

The statistics are hand-written tensor reductions over the attention weights; no library computes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lab.llm import plots
from lab.llm.loading import ModelError

DEFAULT_PROMPT = "Return a new list of the items. Return a new list of the items."


@torch.no_grad()
def attentions(model: PreTrainedModel, ids: torch.Tensor) -> torch.Tensor:
    """Attention weights for token ids [B, T]: [B, L, H, T, T] (rows: queries, summing to 1)."""
    model.eval()
    out = model(input_ids=ids.to(next(model.parameters()).device), output_attentions=True)
    if not out.attentions:
        raise ModelError("the model returned no attention weights; load it with attn_implementation='eager'")
    return torch.stack(out.attentions, dim=1).float().cpu()


def head_stats(attn: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-head statistics of attn [B, L, H, T, T], each [L, H], averaged over queries 1..T-1 and the batch.

    entropy (nats), mean distance |query - key| in tokens, and the fraction of queries whose strongest key
    is the previous token, the first token (a "sink"), or the query itself.
    """
    t = attn.shape[-1]
    q = torch.arange(t)
    dist = (q[:, None] - q[None, :]).abs().float()  # [T, T]
    a = attn[..., 1:, :]  # drop query 0: it can only see itself in a causal model
    entropy = -(a * a.clamp_min(1e-12).log()).sum(-1)
    distance = (a * dist[1:]).sum(-1)
    top = a.argmax(-1)  # [B, L, H, T-1]
    queries = q[1:]
    return {"entropy": entropy.mean((0, -1)).numpy(), "distance": distance.mean((0, -1)).numpy(),
            "prev_token": (top == queries - 1).float().mean((0, -1)).numpy(),
            "first_token": (top == 0).float().mean((0, -1)).numpy(),
            "self": (top == queries).float().mean((0, -1)).numpy()}


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> np.ndarray:
    """Jensen-Shannon divergence (nats) between two models' attention rows [B, L, H, T, T] → [L, H] mean."""
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        return (a * (a.clamp_min(1e-12).log() - m.clamp_min(1e-12).log())).sum(-1)

    return ((kl(p) + kl(q)) / 2)[..., 1:].mean((0, -1)).numpy()


def _argmax(m: np.ndarray) -> tuple[int, int, float]:
    """(layer, head, value) of the largest entry of an [L, H] matrix."""
    layer, head = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(layer), int(head), float(m[layer, head])


def captions(stats: dict[str, np.ndarray]) -> dict[str, str]:
    """Short sentences for the figures, each derived from the statistics it describes."""
    lp, hp, prev = _argmax(stats["prev_token"])
    ls, hs, sink = _argmax(stats["first_token"])
    lz, hz, own = _argmax(stats["self"])
    le, he, _ = _argmax(-stats["entropy"])
    ld, hd, far = _argmax(stats["distance"])
    prev_sentence = f"head {lp}.{hp} attends most to the previous token for {prev:.0%} of queries"
    return {
        "heads": (f"{prev_sentence}; head {lz}.{hz} attends most to the token itself for {own:.0%}; head {ls}.{hs} "
                  f"puts its peak on the first token for {sink:.0%} (a sink)"),
        "stats": (f"sharpest head {le}.{he} (entropy {stats['entropy'][le, he]:.2f} nats, mean over heads "
                  f"{stats['entropy'].mean():.2f}); longest reach: head {ld}.{hd}, {far:.1f} tokens back on average"),
        "prev": prev_sentence,
    }


def divergence_caption(div: np.ndarray) -> str:
    """Which head fine-tuning changed most, and how much the heads changed on average, per layer."""
    layer, head, top = _argmax(div)
    per_layer = ", ".join(f"L{i} {v:.3f}" for i, v in enumerate(div.mean(1)))
    return (f"the adapter changed head {layer}.{head} most (JS {top:.3f} nats; mean over heads {div.mean():.3f}); "
            f"per layer: {per_layer}")


def token_labels(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> list[str]:
    """Readable per-token strings for axis labels (whitespace made visible)."""
    return [tokenizer.decode([i]).replace("\n", "\\n").replace(" ", "·") or "∅" for i in ids]


def run_attention(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, blocks: torch.Tensor,
                  out_dir: Path, tuned: PreTrainedModel | None = None) -> dict:
    """Figures and statistics for `model` (and its divergence from `tuned` when given).

    prompt: drawn as heatmaps (the sharpest previous-token head and the grid of all heads);
    blocks [N, T]: held-out text over which the per-head statistics and the divergence are averaged.
    Writes attention_head.png, attention_grid.png, head_stats.png (and head_divergence.png) to out_dir.
    """
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"][:, :64]
    if ids.shape[1] < 2:
        raise ValueError("the prompt must have at least two tokens")
    prompt_attn = attentions(model, ids)[0].numpy()  # [L, H, T, T]
    attn = attentions(model, blocks)
    stats = head_stats(attn)
    caps = captions(stats)
    layer, head, _ = _argmax(stats["prev_token"])
    figures = [
        plots.attention_head(prompt_attn[layer, head], token_labels(tokenizer, ids[0].tolist()),
                             out_dir / "attention_head.png", f"head {layer}.{head} on the prompt", caps["prev"]),
        plots.attention_grid(prompt_attn, out_dir / "attention_grid.png", caps["heads"]),
        plots.head_matrices({"entropy (nats)": stats["entropy"], "mean distance (tokens)": stats["distance"],
                             "previous-token fraction": stats["prev_token"]}, out_dir / "head_stats.png",
                            caps["stats"]),
    ]
    result = {"prompt": prompt, "prompt_tokens": ids.shape[1], "blocks": list(blocks.shape),
              "layers": int(attn.shape[1]), "heads": int(attn.shape[2]),
              **{k: v.tolist() for k, v in stats.items()}, "captions": caps}
    if tuned is not None:
        div = js_divergence(attn, attentions(tuned, blocks))
        result["divergence"] = div.tolist()
        result["captions"]["divergence"] = divergence_caption(div)
        figures.append(plots.head_matrices({"JS divergence base vs fine-tuned (nats)": div},
                                           out_dir / "head_divergence.png", result["captions"]["divergence"]))
    result["figures"] = [str(f) for f in figures]
    return result
