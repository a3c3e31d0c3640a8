"""`lab train`: the seq-JEPA training loop, read top to bottom in this file.

`train_step`: M+1 views and M relative actions (made on the device) → encode the M context
views (online) and the target view (EMA copy, or the online encoder under stop-gradient) →
aggregate → predict → prediction loss (− λ·coding rate) → online probes on detached features →
one optimiser step → EMA update.
`train`: build data, model, target, probes and optimiser from the config (`lab.build`); resume if asked; per
epoch set τ, per step set the lr and call `train_step`; log, checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lab.build import accelerate, autocast_for, build_parts, build_sampler, resolve_device
from lab.config import ConfigError, RunConfig
from lab.data.views import Sequence, ViewSampler
from lab.data.actions import inverse_action_signs
from lab.eval.controls import reestimate_on_training_sequences
from lab.losses.objective import objective
from lab.models.seqjepa import Forward, SeqJEPA
from lab.rundir.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lab.rundir.directory import RunStateError, open_run_dir, prepare_run_dir
from lab.rundir.metrics import RunLogger
from lab.rundir.results import write_results_file
from lab.train import ddp
from lab.train.local import local_loss
from lab.train.optim import build_optimizer
from lab.models.probes import OnlineProbes, ProbeInputs
from lab.train.schedules import ema_tau, learning_rate


ExtraLoss = Callable[[Forward, Sequence], tuple[torch.Tensor, dict]]


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"), disable=not enabled,
    )


def train_step(model: SeqJEPA, target: nn.Module, probes: OnlineProbes, opt: torch.optim.Optimizer,
               loss_fn: Callable, seq: Sequence, tau: float, autocast: contextlib.AbstractContextManager,
               rate_weight: float = 0.0, reverse_signs: torch.Tensor | None = None,
               extra: ExtraLoss | None = None, replicas: tuple[nn.Module, nn.Module] | None = None) -> dict[str, float]:
    """One optimiser step on a sequence batch; returns the loss, each of its terms ("loss/<term>") and the probe metrics.

    loss_fn(pred, target, z, z_agg, rate_weight) → (total, {term: value}) (`lab.losses.objective`).
    reverse_signs (A,): the symmetric loss — also predict x_1 from x_{M+1}..x_2, whose actions are
    the inverses (signs · a) in reverse order, and average the two.
    extra(out, seq) → (loss, metrics): terms that need the forward pass (local stage losses,
    distillation), added to the loss; its metrics are returned with the probes'.
    replicas: the DistributedDataParallel wrappers of (model, probes) when data parallel; their
    forward calls all-reduce the gradients in backward.
    """
    m, b = seq.views.shape[1] - 1, seq.views.shape[0]
    forward, probe_forward = replicas or (model, probes)
    views, actions = seq.views, seq.actions
    if reverse_signs is not None:  # both directions in one batch (2B): one BatchNorm update per step
        views = torch.cat([views, views.flip(1)])
        actions = torch.cat([actions, actions.flip(1) * reverse_signs])
    with autocast:
        both = forward(views[:, :m], actions)  # context x_1..x_M with actions a_1..a_M
        targets = target(views[:, m], model.encoder)  # target encoder on x_{M+1}, no gradient
        halves = [slice(0, b)] if reverse_signs is None else [slice(0, b), slice(b, 2 * b)]
        parts = [loss_fn(both.pred[h], targets[h], both.z[h], both.z_agg[h], rate_weight) for h in halves]
        loss = sum(p[0] for p in parts) / len(parts)
        terms = {k: sum(p[1][k] for p in parts) / len(parts) for k in parts[0][1]}
        out = Forward(pred=both.pred[:b], z=both.z[:b], z_agg=both.z_agg[:b], e=None if both.e is None else both.e[:b])
        z_target = targets[:b]
        with torch.no_grad():  # leakage-probe inputs: z_AGG of the one-view sequences x1 and x2
            z2 = out.z[:, 1] if m > 1 else z_target
            e = out.e  # the forward's embeddings: the action BatchNorm sees one batch per step
            singles = torch.stack([out.z[:, 0], z2]).flatten(0, 1)[:, None]  # (2B, 1, D)
            agg1, agg2 = model.aggregate(singles, None if e is None else e.repeat(2, 1, 1)).chunk(2)
        probe_loss, probe_metrics = probe_forward(ProbeInputs(out.z_agg, out.z[:, 0], z2, agg1, agg2, seq.actions[:, 0], seq.labels))
        if extra is not None:
            extra_loss, extra_metrics = extra(out, seq)
            loss, probe_metrics = loss + extra_loss, probe_metrics | extra_metrics
    opt.zero_grad(set_to_none=True)
    (loss + probe_loss).backward()
    opt.step()
    target.update(model.encoder, tau)
    return {"loss": loss.item(), **{f"loss/{k}": v.item() for k, v in terms.items()}, **probe_metrics}


def freeze_encoder(model: SeqJEPA, sampler: ViewSampler, cfg: RunConfig) -> None:
    """The frozen-random-encoder control arm (`train.freeze_encoder`), in place, before the optimiser is built.

    The encoder keeps its initial weights (no gradient, so no optimiser state) and its BatchNorm
    statistics are re-estimated on training sequences exactly as `lab eval` re-estimates its
    untrained twin's (same sequences, same seed), then fixed: the loop keeps the encoder in eval
    mode. So the arm's encoder is the fair twin's, and what it gains over the twin is what training
    the action embedding, aggregator and predictor on random features adds."""
    ev = cfg.eval
    reestimate_on_training_sequences(model, sampler, cfg.data.seq_len, ev.control_bn_sequences, ev.batch_size,
                                     seed=ev.seed + 3)
    model.encoder.requires_grad_(False)


def rate_weight_at(step: int, steps_per_epoch: int, cfg: RunConfig) -> float:
    """λ of the coding-rate term at a step: linear ramp from 0 over rate.warmup_epochs, then constant."""
    rate = cfg.objective.rate
    ramp = rate.warmup_epochs * steps_per_epoch
    return rate.weight * (min(1.0, step / ramp) if ramp > 0 else 1.0)


def train(cfg: RunConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Train the run described by `cfg` into cfg.run_dir; returns the run directory.

    `overwrite` deletes an existing run directory first (what a re-runnable verification wants).
    """
    prepare_run_dir(cfg, resume, overwrite)
    run_dir = cfg.run_dir
    rank = ddp.current()  # rank 0 of 1 unless started by `lab train --nproc N` (lab.train.launch)
    device = ddp.device_for(rank, resolve_device(cfg.train.device))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)

    sampler = build_sampler(cfg, "train", device)
    sampler.shard(rank.rank, rank.world)
    model, target, probes = build_parts(cfg, sampler, device)
    if cfg.train.freeze_encoder:
        freeze_encoder(model, sampler, cfg)
    ddp.sync_batchnorm([model, target], rank, device, cfg.train.sync_bn)
    if rank.world > 1:  # own streams per rank for kornia's draws and dropout (views' parameters are shared)
        torch.manual_seed(cfg.train.seed + 1_000_003 * rank.rank)
    loss_fn = functools.partial(objective, cfg.objective)
    reverse_signs = inverse_action_signs(sampler.action_names).to(device) if cfg.objective.symmetric else None
    extra = local_loss(model, target) if cfg.objective.local.enabled else None
    opt = build_optimizer(cfg.optim, model, probes)
    cuda = device.type == "cuda"
    accelerate(cfg, model, target, device)
    autocast = autocast_for(device, cfg.train.bf16)
    replicas = None if rank.world == 1 else (ddp.wrap(model, rank, device), ddp.wrap(probes, rank, device))

    n, bs, m = sampler.num_samples, cfg.train.batch_size, cfg.data.seq_len
    if n < bs:
        raise ConfigError(f"train.batch_size {bs} exceeds the {n} training samples; lower it or raise data.num_train")
    try:
        local_bs = ddp.shard_batch(rank, bs)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    steps_per_epoch = min(n // bs, cfg.train.steps_per_epoch or n)
    total_steps = cfg.train.epochs * steps_per_epoch
    warmup_steps = min(total_steps, round(cfg.optim.warmup_epochs * steps_per_epoch))

    start_epoch, step, train_seconds = 0, 0, 0.0
    if resume:
        state = load_checkpoint(run_dir, device)
        if state.config_digest != cfg.digest():
            raise RunStateError(f"--resume: the config differs from the one {run_dir} was trained with (see {run_dir}/config.yaml)")
        for module, part in ((model, state.model), (target, state.target), (probes, state.probes), (opt, state.optimizer)):
            module.load_state_dict(part)
        if state.world_size != rank.world:
            raise RunStateError(f"--resume: {run_dir} was trained by {state.world_size} process(es); resume it with --nproc {state.world_size}")
        torch.set_rng_state(state.cpu_rng_states[rank.rank])
        sampler.generator.set_state(state.rng_views.to(sampler.generator.get_state().device))
        if cuda and state.rng_cuda is not None and rank.world == 1:
            torch.cuda.set_rng_state(state.rng_cuda)
        start_epoch, step, train_seconds = state.epoch + 1, state.step, state.train_seconds
    logger = None
    if rank.main:  # logging, W&B and checkpoints: rank 0 only
        open_run_dir(cfg)  # only once data and model are built
        logger = RunLogger(cfg, run_dir, resume_step=step if resume else None)

    for module in (model, target, probes):
        module.train()
    if cfg.train.freeze_encoder:
        model.encoder.eval()  # its re-estimated BatchNorm statistics stay fixed
    with _progress(cfg.logging.progress and rank.main) as progress:
        task = progress.add_task(cfg.name, total=total_steps, completed=step, stats="")
        for epoch in range(start_epoch, cfg.train.epochs):
            t0 = time.perf_counter()
            target_cfg = cfg.objective.target
            tau = ema_tau(epoch, cfg.train.epochs, target_cfg.base, target_cfg.final) if target_cfg.kind == "ema" else 0.0
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch)).to(device)
            meter: dict[str, list[float]] = defaultdict(list)
            for i in range(steps_per_epoch):
                lr = learning_rate(step, total_steps, warmup_steps, cfg.optim)
                for group in opt.param_groups:
                    if group["role"] == "model":
                        group["lr"] = lr

                start = i * bs + rank.rank * local_bs  # this rank's rows of the global batch
                seq = sampler.sample(perm[start : start + local_bs], m + 1)  # views (b, M+1, 3, H, W), actions (b, M, A)
                rate_weight = rate_weight_at(step, steps_per_epoch, cfg)
                metrics = train_step(model, target, probes, opt, loss_fn, seq, tau, autocast, rate_weight, reverse_signs,
                                     extra, replicas)
                step += 1

                for key, value in metrics.items():
                    meter[key].append(value)
                if step % cfg.train.log_every == 0 or i == steps_per_epoch - 1:
                    record = {"step": step, "epoch": epoch, "lr": lr, "tau": tau, "rate_weight": rate_weight}
                    record |= ddp.mean_over_ranks({k: sum(v) / len(v) for k, v in meter.items()}, rank, device)
                    if rank.main:  # CRATE: per-layer ISTA sparsity and head coding rate on this batch's context
                        stats = model.aggregator_layer_stats(seq.views[:, :m], seq.actions)
                        record |= {f"agg/{k}": v for k, v in stats.items()}
                    if logger is not None:
                        logger.log(record)
                    meter.clear()
                    progress.update(task, stats=(
                        f"loss {record['loss']:.3f}  acc {record['probe/linacc_agg']:.2f}  R² {record['probe/r2_equi']:.2f}"
                    ))
                progress.update(task, completed=step)

            train_seconds += time.perf_counter() - t0
            if (epoch + 1) % cfg.train.ckpt_every == 0 or epoch == cfg.train.epochs - 1:
                rng_ranks = ddp.gather_rng(rank)
                if rank.main:
                    save_checkpoint(run_dir, Checkpoint(
                        epoch=epoch, step=step, train_seconds=train_seconds, config_digest=cfg.digest(),
                        model=model.state_dict(), target=target.state_dict(), probes=probes.state_dict(),
                        optimizer=opt.state_dict(), rng_cpu=torch.get_rng_state(), rng_cpu_ranks=rng_ranks,
                        rng_views=sampler.generator.get_state(), rng_cuda=torch.cuda.get_rng_state() if cuda else None,
                        wandb_id=logger.wandb_id, device=str(device),
                    ))
    if rank.world > 1:
        spread = ddp.replica_spread(model, rank, device)  # a collective: every rank takes part
        if rank.main:
            write_results_file(run_dir / "ddp.json", ddp.summary(rank, spread))
    if logger is not None:
        logger.finish()
    return run_dir
