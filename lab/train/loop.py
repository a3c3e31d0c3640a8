"""`lab train`: the seq-JEPA training loop, read top to bottom in this file.

`train_step`: M+1 views and M relative actions (made on the device) → encode the M context
views (online) and the target view (EMA) → aggregate → predict → 1 − cos loss → online probes
on detached features → one optimiser step → EMA update.
`train`: build data, model, target, probes and optimiser from the config (`lab.build`); resume if asked; per
epoch set τ, per step set the lr and call `train_step`; log, checkpoint.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lab.build import autocast_for, build_parts, build_sampler, resolve_device
from lab.config import ConfigError, RunConfig, save_config
from lab.data.views import Sequence
from lab.losses import LOSSES
from lab.models.seqjepa import SeqJEPA
from lab.train.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from lab.train.logging import RunLogger
from lab.train.optim import build_optimizer
from lab.train.probes import OnlineProbes, ProbeInputs
from lab.train.schedules import ema_tau, learning_rate


class RunStateError(RuntimeError):
    """The run directory does not fit the request (exists without --resume, or nothing to resume)."""


def _check_run_dir(cfg: RunConfig, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise RunStateError("--resume continues a run and --overwrite replaces it: pass one of them")
    has_ckpt = checkpoint_path(cfg.run_dir).is_file()
    if has_ckpt and not (resume or overwrite):
        raise RunStateError(
            f"{cfg.run_dir} already holds a run; pass --resume to continue it, --overwrite to start it again, "
            "or pick another name with --set name=NEW"
        )
    if resume and not has_ckpt:
        raise RunStateError(f"--resume: no checkpoint in {cfg.run_dir}; start the run without --resume")


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"), disable=not enabled,
    )


def train_step(model: SeqJEPA, target: nn.Module, probes: OnlineProbes, opt: torch.optim.Optimizer,
               loss_fn: Callable, seq: Sequence, tau: float, autocast: contextlib.AbstractContextManager) -> tuple[float, dict]:
    """One optimiser step on a sequence batch; returns the prediction loss and the probe metrics."""
    m = seq.views.shape[1] - 1
    with autocast:
        out = model(seq.views[:, :m], seq.actions)  # context x_1..x_M with actions a_1..a_M
        z_target = target(seq.views[:, m])  # EMA encoder on x_{M+1}
        loss = loss_fn(out.pred, z_target)
        with torch.no_grad():  # leakage-probe inputs: z_AGG of the one-view sequences x1 and x2
            z2 = out.z[:, 1] if m > 1 else z_target
            e = model.embed_actions(seq.actions)
            singles = torch.stack([out.z[:, 0], z2]).flatten(0, 1)[:, None]  # (2B, 1, D)
            agg1, agg2 = model.aggregate(singles, None if e is None else e.repeat(2, 1, 1)).chunk(2)
        probe_loss, probe_metrics = probes(ProbeInputs(out.z_agg, out.z[:, 0], z2, agg1, agg2, seq.actions[:, 0], seq.labels))
    opt.zero_grad(set_to_none=True)
    (loss + probe_loss).backward()
    opt.step()
    target.update(model.encoder, tau)
    return loss.item(), probe_metrics


def train(cfg: RunConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Train the run described by `cfg` into cfg.run_dir; returns the run directory.

    `overwrite` deletes an existing run directory first (what a re-runnable verification wants).
    """
    _check_run_dir(cfg, resume, overwrite)
    if overwrite and cfg.run_dir.exists():
        shutil.rmtree(cfg.run_dir)
    run_dir = cfg.run_dir
    device = resolve_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)

    sampler = build_sampler(cfg, "train", device)
    model, target, probes = build_parts(cfg, sampler, device)
    loss_fn = LOSSES[cfg.objective.loss]
    opt = build_optimizer(cfg.optim, model, probes)
    cuda = device.type == "cuda"
    if cuda and cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
        target.to(memory_format=torch.channels_last)
    if cuda and cfg.train.compile:
        model.encoder.compile()
        target.encoder.compile()
    autocast = autocast_for(device, cfg.train.bf16)

    n, bs, m = sampler.num_samples, cfg.train.batch_size, cfg.data.seq_len
    if n < bs:
        raise ConfigError(f"train.batch_size {bs} exceeds the {n} training samples; lower it or raise data.num_train")
    steps_per_epoch = min(n // bs, cfg.train.steps_per_epoch or n)
    total_steps = cfg.train.epochs * steps_per_epoch
    warmup_steps = min(total_steps, round(cfg.optim.warmup_epochs * steps_per_epoch))

    start_epoch, step, train_seconds = 0, 0, 0.0
    if resume:
        state = load_checkpoint(run_dir, device)
        if state["config_digest"] != cfg.digest():
            raise RunStateError(f"--resume: the config differs from the one {run_dir} was trained with (see {run_dir}/config.yaml)")
        for module, key in ((model, "model"), (target, "target"), (probes, "probes"), (opt, "optimizer")):
            module.load_state_dict(state[key])
        torch.set_rng_state(state["rng_cpu"])
        if cuda and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        start_epoch, step, train_seconds = state["epoch"] + 1, state["step"], state["train_seconds"]
    run_dir.mkdir(parents=True, exist_ok=True)  # only once data and model are built
    save_config(cfg, run_dir / "config.yaml")
    logger = RunLogger(cfg, run_dir, resume_step=step if resume else None)

    for module in (model, target, probes):
        module.train()
    with _progress(cfg.logging.progress) as progress:
        task = progress.add_task(cfg.name, total=total_steps, completed=step, stats="")
        for epoch in range(start_epoch, cfg.train.epochs):
            t0 = time.perf_counter()
            tau = ema_tau(epoch, cfg.train.epochs, cfg.objective.target.base, cfg.objective.target.final)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch)).to(device)
            meter: dict[str, list[float]] = defaultdict(list)
            for i in range(steps_per_epoch):
                lr = learning_rate(step, total_steps, warmup_steps, cfg.optim)
                for group in opt.param_groups:
                    if group["role"] == "model":
                        group["lr"] = lr

                seq = sampler.sample(perm[i * bs : (i + 1) * bs], m + 1)  # views (B, M+1, 3, H, W), actions (B, M, A)
                loss, probe_metrics = train_step(model, target, probes, opt, loss_fn, seq, tau, autocast)
                step += 1

                meter["loss"].append(loss)
                for key, value in probe_metrics.items():
                    meter[key].append(value)
                if step % cfg.train.log_every == 0 or i == steps_per_epoch - 1:
                    record = {"step": step, "epoch": epoch, "lr": lr, "tau": tau}
                    record |= {k: sum(v) / len(v) for k, v in meter.items()}
                    logger.log(record)
                    meter.clear()
                    progress.update(task, stats=(
                        f"loss {record['loss']:.3f}  acc {record['probe/linacc_agg']:.2f}  R² {record['probe/r2_equi']:.2f}"
                    ))
                progress.update(task, completed=step)

            train_seconds += time.perf_counter() - t0
            if (epoch + 1) % cfg.train.ckpt_every == 0 or epoch == cfg.train.epochs - 1:
                save_checkpoint(run_dir, {
                    "epoch": epoch, "step": step, "train_seconds": train_seconds, "config_digest": cfg.digest(),
                    "model": model.state_dict(), "target": target.state_dict(), "probes": probes.state_dict(),
                    "optimizer": opt.state_dict(), "rng_cpu": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state() if cuda else None,
                    "wandb_id": logger.wandb_id, "device": str(device),
                })
    logger.finish()
    return run_dir
