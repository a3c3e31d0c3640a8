"""Token blocks, held-out loss and the causal-LM training loop shared by the base model and fine-tuning.

A plain loop rather than the HF `Trainer`: a reader can follow one step top to bottom, and the
curves it returns are exactly what results.json and the plots show.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_cosine_schedule_with_warmup

from lab.llm import corpus


def encode_blocks(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str], ctx: int) -> torch.Tensor:
    """Tokenise `texts`, join them with the EOS (or SEP) token and cut the stream into blocks: LongTensor [N, ctx]."""
    sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    stream: list[int] = []
    for ids in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]:
        stream.extend(ids)
        if sep is not None:
            stream.append(sep)
    n = len(stream) // ctx
    if n == 0:
        raise ValueError(f"only {len(stream)} tokens of text: not enough for one block of {ctx}")
    return torch.tensor(stream[: n * ctx], dtype=torch.long).view(n, ctx)


@torch.no_grad()
def eval_loss(model: PreTrainedModel, blocks: torch.Tensor, batch_size: int = 16) -> float:
    """Mean next-token cross-entropy (nats/token) of `model` on `blocks` [N, T]."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        x = blocks[i:i + batch_size].to(device)
        total += model(input_ids=x, labels=x).loss.float().item() * len(x)
        count += len(x)
    model.train(was_training)
    return total / count


def unigram_loss(train: torch.Tensor, val: torch.Tensor, vocab_size: int) -> float:
    """The frequency-only control: next-token cross-entropy (nats/token) on the targets of `val`
    [N, T] (positions 1…T−1, what `eval_loss` scores) of a model that predicts every token from
    its add-one-smoothed frequency in `train` [M, T] and ignores the context."""
    counts = torch.bincount(train.flatten(), minlength=vocab_size).double() + 1.0
    log_p = counts.log() - counts.sum().log()
    return float(-log_p[val[:, 1:].flatten()].mean())


def train_lm(model: PreTrainedModel, train: torch.Tensor, val: torch.Tensor, *, steps: int, lr: float,
             batch_size: int = 16, warmup: int = 30, weight_decay: float = 0.1, eval_every: int = 50,
             seed: int = 0, label: str = "train") -> dict:
    """Train the trainable parameters of `model` on random batches of `train` [N, T] with AdamW + cosine.

    Returns {"steps" (done), "train_loss" (one per step), "val_steps", "val_loss" (at step 0, every
    `eval_every` steps and at the end), "diverged" (a non-finite loss stopped it), "wall_s", "tokens_per_s"}.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, min(warmup, steps // 10), steps)
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    curve = {"train_loss": [], "val_steps": [0], "val_loss": [eval_loss(model, val, batch_size)]}
    model.train()
    start, diverged = time.perf_counter(), False
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task(label, total=steps, loss="-")
        for step in range(1, steps + 1):
            x = train[torch.randint(len(train), (batch_size,), generator=gen)].to(device)
            loss = model(input_ids=x, labels=x).loss
            if not math.isfinite(loss.item()):  # diverged: stop and say so rather than train on NaNs
                diverged = True
                break
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            curve["train_loss"].append(loss.item())
            if step % eval_every == 0 or step == steps:
                curve["val_steps"].append(step)
                curve["val_loss"].append(eval_loss(model, val, batch_size))
            progress.update(task, advance=1, loss=f"{loss.item():.3f}")
    wall = time.perf_counter() - start
    done = len(curve["train_loss"])
    return {"steps": done, **curve, "diverged": diverged, "wall_s": wall,
            "tokens_per_s": done * batch_size * train.shape[1] / wall}


def final_loss(losses: list[float], window: int = 20) -> float:
    """Mean of the last `window` training losses (NaN when there are none): a less noisy final figure."""
    tail = losses[-window:]
    return sum(tail) / len(tail) if tail else float("nan")


def heldout_blocks(tokenizer: PreTrainedTokenizerBase, ctx: int, n: int) -> torch.Tensor:
    """Up to `n` held-out blocks [≤n, ctx]: half prose, half code, from the validation splits of both domains."""
    _, prose = corpus.prose_split()
    _, code = corpus.code_split()
    half = max(1, n // 2)
    return torch.cat([encode_blocks(tokenizer, prose, ctx)[:half], encode_blocks(tokenizer, code, ctx)[: n - half]])
