"""Forgetting: old-domain (prose) and new-domain (code) loss and next-token probes before and after fine-tuning.

The control (issue 22, finding 10): the same adapter recipe (method, rank, lr, steps, seed) fine-tuned on
the old domain's own training split instead of code. Its prose-loss change is what fine-tuning does to the
old domain without a domain shift; forgetting is the code run's prose-loss rise beyond it
(`forgetting_over_control`), and a gate compares the two over seeds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PreTrainedModel

from lab.llm import corpus
from lab.llm.finetune import Domains, FinetuneSpec, attach_lora, domains, train_adapter
from lab.llm.loading import load_tokenizer
from lab.llm.train import encode_blocks, eval_loss


@torch.no_grad()
def next_token_accuracy(model: PreTrainedModel, blocks: torch.Tensor, batch_size: int = 16) -> float:
    """Fraction of positions whose argmax prediction is the actual next token, over `blocks` [N, T]."""
    model.eval()
    device = next(model.parameters()).device
    hits = total = 0
    for i in range(0, len(blocks), batch_size):
        x = blocks[i:i + batch_size].to(device)
        pred = model(input_ids=x).logits[:, :-1].argmax(-1)
        hits += (pred == x[:, 1:]).sum().item()
        total += pred.numel()
    return hits / total


def measure(model: PreTrainedModel, suites: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss on the two domains' validation blocks and next-token accuracy on every suite."""
    out = {"prose_loss": eval_loss(model, suites["prose"]), "code_loss": eval_loss(model, suites["code"])}
    out.update({f"{name}_acc": next_token_accuracy(model, blocks) for name, blocks in suites.items()})
    return out


def run_forgetting(model_dir: Path, spec: FinetuneSpec, out_dir: Path | None = None, control: bool = True) -> dict:
    """Measure, fine-tune on code per `spec`, measure again; with `control`, also fine-tune the same way on prose.

    Returns {"before", "after", "delta" (after − before per metric), "forgetting" (prose loss increase),
    "finetune" (the fine-tuning results)} and, with `control`, {"control": {"after", "delta", "forgetting",
    "finetune"}, "forgetting_over_control"}.
    """
    tokenizer = load_tokenizer(model_dir)
    data = domains(tokenizer, spec)
    suites = {"prose": data.prose_val, "code": data.code_val,
              "arithmetic": encode_blocks(tokenizer, corpus.arithmetic_texts(600, spec.seed), spec.ctx)}
    model = attach_lora(model_dir, spec)  # LoRA's B starts at zero: before = the (quantised, for QLoRA) base
    before = measure(model, suites)
    result = train_adapter(model, spec, data, out_dir)
    after = measure(model, suites)
    out = {"before": before, "after": after, "delta": {k: after[k] - before[k] for k in before},
           "forgetting": after["prose_loss"] - before["prose_loss"], "finetune": result}
    if control:
        del model
        prose_train, _ = corpus.prose_split()
        same_domain = Domains(encode_blocks(tokenizer, prose_train, spec.ctx), data.prose_val, data.prose_val)
        twin = attach_lora(model_dir, spec)  # the same start as `model` (same seed, B = 0)
        twin_result = train_adapter(twin, spec, same_domain)
        twin_after = measure(twin, suites)
        out["control"] = {"after": twin_after, "delta": {k: twin_after[k] - before[k] for k in before},
                          "forgetting": twin_after["prose_loss"] - before["prose_loss"], "finetune": twin_result}
        out["forgetting_over_control"] = out["forgetting"] - out["control"]["forgetting"]
    return out


def caption(result: dict) -> str:
    """One sentence on what fine-tuning did, derived from the before/after numbers."""
    b, a = result["before"], result["after"]
    verb = "raised" if result["forgetting"] > 0 else "lowered"
    return (f"fine-tuning on code took code loss {b['code_loss']:.3f} → {a['code_loss']:.3f} and {verb} prose loss "
            f"{b['prose_loss']:.3f} → {a['prose_loss']:.3f} ({result['forgetting']:+.3f} nats); next-token accuracy: "
            f"prose {b['prose_acc']:.1%} → {a['prose_acc']:.1%}, code {b['code_acc']:.1%} → {a['code_acc']:.1%}, "
            f"arithmetic {b['arithmetic_acc']:.1%} → {a['arithmetic_acc']:.1%}"
            + (f"; the control (the same recipe on prose) changed prose loss by {result['control']['forgetting']:+.3f}, "
               f"so forgetting beyond it is {result['forgetting_over_control']:+.3f} nats" if "control" in result else ""))
