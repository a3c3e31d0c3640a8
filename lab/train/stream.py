"""`lab stream CONFIG`: streaming / continual seq-JEPA, one pass over a non-IID stream.

Beside the epoch loop (lab.train.loop), with the same model, target, probes, optimiser and
`train_step`: the training set is cut into class-incremental tasks (lab.data.stream) and seen
once, in small batches, task after task (with `task_tint`, each task's images in their own
colour, in the eval splits too); `order: iid` is the null stream, the same samples shuffled over
all tasks. With `distill > 0`, a CaSSLe-style term: a predictor maps the current encoder's
features of the context views onto the frozen previous-task encoder's, through the same 1 − cos
loss, L = L_JEPA + distill · (1 − cos(g(z), sg(z_prev))).
With `iterations` > 1 each incoming batch takes that many optimiser steps (online continual
learning's "iterations per batch"; new views and a new replay draw each time) before the stream
moves on, so a sample still arrives once.

Every arm trains on the same number of samples per step, the size of the incoming batch
(`step_indices`): without replay the incoming batch; FIFO and reservoir replace `replay_batch`
of them (in proportion for a short batch) by buffered samples, the kept incoming ones drawn afresh
at each iteration; MinRed draws the whole step from its buffer, into which each batch enters on
arrival (Purushwalkam et al.'s buffered SSL). MinRed's features come from a pass of the encoder
in eval mode over two of the step's views, so that arm gets no extra BatchNorm updates.
Schedules are in optimiser steps (there are no epochs): warmup then cosine for the lr, the EMA τ
cosine over the whole stream.

Evaluation: a frozen linear probe on z_AGG (M_val = M_tr) over the eval subsets of the train and
test splits (held on the device; the stream itself is not). With `eval_bn: reestimate` (the
default) each evaluation probes a copy of the network whose BatchNorm statistics are re-estimated
on sequences of the eval-train split, all tasks alike, no gradient step (lab.eval.controls) — so
no arm is judged through the statistics of the last task it saw, and the untrained row is the
fair twin. Before training (same seed, same weights) and after each task, a within-task probe per
task gives the task × task matrix; `evals_per_task` times per task, probes over all classes and
over the classes seen so far give the accuracy-vs-samples curve; `noise_evals` re-evaluations of
the final network with other probe seeds give forgetting's noise floor. Results: RUN/stream.json
(lab.train.stream_metrics) and RUN/plots/stream.png; the checkpoint is the usual one, so
`lab eval RUN` also works.
"""

from __future__ import annotations

import copy
import functools
import time
from typing import Any

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from lab.build import autocast_for, build_parts, build_sampler, resolve_device
from lab.config import ConfigError, RunConfig, StreamConfig
from lab.data.registry import load_dataset
from lab.data.replay import BUFFERS, ReplayBuffer
from lab.data.stream import (DeviceWindow, batches, class_incremental_order, drifted, iid_order, task_classes,
                              tint_tasks)
from lab.eval.controls import reestimate_on_training_sequences
from lab.eval.probes import linear_probe_accuracy
from lab.eval.features import extract
from lab.models.distiller import Distiller
from lab.losses.objective import objective
from lab.rundir.checkpoint import Checkpoint, save_checkpoint
from lab.rundir.directory import open_run_dir, replace_run_dir
from lab.rundir.metrics import RunLogger
from lab.rundir.provenance import flat, run_provenance
from lab.rundir.results import write_results_file
from lab.train.loop import _progress, train_step
from lab.train.optim import build_optimizer
from lab.train.schedules import ema_tau, learning_rate
from lab.train.stream_metrics import continual_summary, plot_continual, probe_noise


def _subset_accuracy(tr, te, m: int, classes: list[int], max_iter: int) -> float:
    """z_AGG linear-probe accuracy restricted to `classes` (train and test samples of those classes)."""
    keep_tr, keep_te = torch.isin(tr.labels, torch.tensor(classes)), torch.isin(te.labels, torch.tensor(classes))
    return linear_probe_accuracy(tr.agg[m][keep_tr], tr.labels[keep_tr], te.agg[m][keep_te], te.labels[keep_te],
                                 max_iter=max_iter)


def _probe_row(tr, te, m: int, groups: list[list[int]], max_iter: int) -> tuple[list[float], dict[str, float]]:
    """Within-task accuracies (one per task) and all-class accuracy of z_AGG probes."""
    row = [_subset_accuracy(tr, te, m, classes, max_iter) for classes in groups]
    return row, {"acc_all": _subset_accuracy(tr, te, m, sorted(c for g in groups for c in g), max_iter)}


def _seen_accuracy(tr, te, m: int, classes: list[int], max_iter: int) -> float | None:
    """Probe over the classes seen so far (None with fewer than 2)."""
    return _subset_accuracy(tr, te, m, classes, max_iter) if len(classes) >= 2 else None


def step_indices(incoming: torch.Tensor, buffer: ReplayBuffer | None, sc: StreamConfig,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of one optimiser step: (dataset indices (s,), buffer slots of the replayed ones).

    s = incoming.numel() in every arm. No buffer: the incoming batch. MinRed: s samples drawn from
    the buffer (which the incoming batch has already joined). FIFO / reservoir: r = replay_batch
    (scaled by s / batch_size for a short batch, at most the buffer's size) buffered samples and
    s − r incoming ones drawn at random (afresh at each iteration)."""
    none = incoming[:0]
    if buffer is None:
        return incoming, none
    s = incoming.numel()
    if sc.replay == "minred":
        slots, idx = buffer.sample(s)
        return idx, slots
    slots, replayed = buffer.sample(min(len(buffer), s * sc.replay_batch // sc.batch_size))
    kept = incoming[torch.randperm(s, generator=gen)[: s - replayed.numel()]]
    return torch.cat([kept, replayed]), slots


@torch.no_grad()
def eval_mode_features(encoder: nn.Module, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder outputs of two views in eval mode (BatchNorm reads, never updates, its statistics).
    views: (B, 2, 3, H, W) → z1, z2 (B, D); the encoder's mode is restored."""
    was = encoder.training
    encoder.eval()
    try:
        z = encoder(views.flatten(0, 1)).unflatten(0, views.shape[:2])
    finally:
        encoder.train(was)
    return z[:, 0], z[:, 1]


def train_stream(cfg: RunConfig, overwrite: bool = False) -> dict[str, Any]:
    """Run the stream described by cfg.stream into cfg.run_dir; returns the stream results."""
    sc = cfg.stream
    if sc is None:
        raise ConfigError("lab stream needs a `stream:` section (tasks, batch_size, replay, …); see docs/streaming.md")
    replace_run_dir(cfg, overwrite)
    device = resolve_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)

    host = load_dataset(cfg.data.name, cfg.data.root, "train", image_size=cfg.data.image_size, num=cfg.data.num_train,
                        seed=cfg.data.seed)
    groups = task_classes(host.num_classes, sc.tasks, cfg.data.seed)
    tint = functools.partial(tint_tasks, groups=groups, tints=sc.task_tint) if sc.task_tint else None
    if tint:
        host = tint(host)
    window = DeviceWindow(host, cfg.data.views, device)
    order = class_incremental_order(host.labels, groups, cfg.train.seed)
    if sc.order == "iid":
        order = iid_order(order, cfg.train.seed)
    model, target, probes = build_parts(cfg, window, device)
    distiller = Distiller(model.encoder.out_dim, cfg.train.probe_hidden, sc.distill).to(device) if sc.distill > 0 else None
    opt = build_optimizer(cfg.optim, nn.ModuleList([model] + ([distiller] if distiller else [])), probes)
    buffer = BUFFERS[sc.replay](sc.buffer_size, seed=cfg.train.seed) if sc.replay != "none" else None
    draw = torch.Generator().manual_seed(cfg.train.seed + 7)  # which incoming samples a replay step keeps
    loss_fn, autocast, m = functools.partial(objective, cfg.objective), autocast_for(device, cfg.train.bf16), cfg.data.seq_len
    probe_tr, probe_te = build_sampler(cfg, "train", device, tint), build_sampler(cfg, "test", device, tint)
    max_iter = cfg.eval.probe_max_iter

    def evaluate_now(shift: int = 0) -> tuple:
        """Features of the eval splits (probe seeds shifted by `shift`) from a BN-fair copy of the model."""
        net = model
        if sc.eval_bn == "reestimate":
            net = copy.deepcopy(model)
            reestimate_on_training_sequences(net, probe_tr, m, cfg.eval.control_bn_sequences, cfg.eval.batch_size,
                                             seed=cfg.eval.seed + 3 + shift)
        net.eval()
        tr = extract(net, probe_tr, [m], cfg.eval.batch_size, cfg.eval.num_train, cfg.eval.seed + shift)
        te = extract(net, probe_te, [m], cfg.eval.batch_size, cfg.eval.num_test, cfg.eval.seed + 1 + shift)
        model.train()
        return tr, te

    open_run_dir(cfg)
    logger = RunLogger(cfg, cfg.run_dir, resume_step=None)
    stream = list(batches(order, sc.batch_size))
    total = len(stream) * sc.iterations  # optimiser steps
    warmup = min(total, sc.warmup_steps)
    task_len = [sum(1 for b in stream if b.task == t) for t in range(sc.tasks)]
    eval_at = {t: {round(task_len[t] * (k + 1) / sc.evals_per_task) for k in range(sc.evals_per_task)} for t in range(sc.tasks)}

    with threadpool_limits(limits=1, user_api="blas"):
        tr, te = evaluate_now()
        row, extra = _probe_row(tr, te, m, groups, max_iter)
    matrix, curve = [row], [{"seen": 0, "task": -1, "acc_all": extra["acc_all"],
                             "acc_seen": None, "task_end": False}]
    t0, in_task, trained = time.perf_counter(), 0, 0
    for module in (model, target, probes):
        module.train()
    def optimiser_step(batch, step: int, joins_buffer: bool) -> dict[str, Any]:
        """One step on `step_indices`' samples; the logged record. FIFO and reservoir take the batch
        in after its last step (`joins_buffer`), so each sample enters once and is not replayed
        against itself; MinRed took it in on arrival."""
        lr = learning_rate(step, total, warmup, cfg.optim)
        for group in opt.param_groups:
            if group["role"] == "model":
                group["lr"] = lr
        tau = ema_tau(step, total, cfg.objective.target.base, cfg.objective.target.final)
        idx, slots = step_indices(batch.idx, buffer, sc, draw)
        views = drifted(cfg.data.views, sc.drift, batch.progress) if sc.drift else None
        seq = window.sample(idx, m + 1, views)
        if sc.replay == "minred":
            buffer.observe(slots, *eval_mode_features(model.encoder, seq.views[:, :2]))
        metrics = train_step(model, target, probes, opt, loss_fn, seq, tau, autocast, cfg.objective.rate.weight,
                             None, distiller)
        loss = metrics.pop("loss")
        if joins_buffer and sc.replay in ("fifo", "reservoir"):
            buffer.add(batch.idx)
        replayed = idx.numel() if sc.replay == "minred" else slots.numel()
        return {"step": step + 1, "seen": batch.seen + batch.idx.numel(), "task": batch.task, "lr": lr,
                "tau": tau, "loss": loss, "step_samples": int(idx.numel()), "replayed": int(replayed)} | metrics

    with _progress(cfg.logging.progress) as progress:
        bar = progress.add_task(cfg.name, total=total, stats="")
        for index, batch in enumerate(stream):
            if sc.replay == "minred":
                buffer.add(batch.idx)  # every step of this batch is drawn from the buffer
            for repeat in range(sc.iterations):  # optimiser steps on this batch (new views, new replay draw each)
                step = index * sc.iterations + repeat
                record = optimiser_step(batch, step, joins_buffer=repeat == sc.iterations - 1)
                trained += record["step_samples"]
                if (step + 1) % cfg.train.log_every == 0:
                    logger.log(record)
                progress.update(bar, advance=1, stats=f"task {batch.task}  loss {record['loss']:.3f}")

            in_task += 1
            if in_task in eval_at[batch.task]:
                task_end = in_task == task_len[batch.task]
                with threadpool_limits(limits=1, user_api="blas"):
                    tr, te = evaluate_now()
                    row, extra = _probe_row(tr, te, m, groups, max_iter)
                    seen_classes = sorted(c for g in groups[: batch.task + 1] for c in g)
                    acc_seen = _seen_accuracy(tr, te, m, seen_classes, max_iter)
                curve.append({"seen": record["seen"], "task": batch.task, "acc_all": extra["acc_all"],
                              "acc_seen": acc_seen, "task_end": task_end})
                logger.log({"step": step + 1, "stream/acc_all": extra["acc_all"], "stream/acc_seen": acc_seen})
                if task_end:
                    matrix.append(row)
                    in_task = 0
                    if distiller is not None:
                        distiller.snapshot(model.encoder)
    train_seconds = time.perf_counter() - t0
    with threadpool_limits(limits=1, user_api="blas"):
        noise_rows = [_probe_row(*evaluate_now(shift=1000 * k), m, groups, max_iter)[0] for k in range(1, sc.noise_evals + 1)]
    save_checkpoint(cfg.run_dir, Checkpoint(
        epoch=0, step=total, train_seconds=train_seconds, config_digest=cfg.digest(),
        model=model.state_dict(), target=target.state_dict(), probes=probes.state_dict(),
        optimizer=opt.state_dict(), rng_cpu=torch.get_rng_state(), rng_cuda=None,
        wandb_id=logger.wandb_id, device=str(device),
    ))
    logger.finish()

    results: dict[str, Any] = continual_summary(matrix)
    if noise_rows:
        results |= probe_noise(matrix[-1], noise_rows) | {"noise.acc_matrix": noise_rows}
    results |= {"eval.acc_all": curve[-1]["acc_all"], "init.acc_all": curve[0]["acc_all"]}
    results["gain.acc_all"] = results["eval.acc_all"] - results["init.acc_all"]
    results |= {
        "stream.acc_matrix": matrix, "stream.task_classes": groups, "stream.curve": curve,
        "stream.samples": sum(b.idx.numel() for b in stream), "stream.steps": total, "stream.iterations": sc.iterations,
        "stream.trained_samples": trained, "stream.order": sc.order, "stream.eval_bn": sc.eval_bn,
        "stream.replay": sc.replay, "stream.distill": sc.distill,
        **flat(run_provenance(cfg, train_seconds, world_size=1)),  # a stream runs in one process
    }
    write_results_file(cfg.run_dir / "stream.json", results)
    plot_continual(matrix, curve, cfg.run_dir / "plots" / "stream.png",
                   f"{cfg.name}: {sc.order} stream, replay {sc.replay}, distill {sc.distill}, BN at eval: {sc.eval_bn}",
                   host.num_classes)
    return results

