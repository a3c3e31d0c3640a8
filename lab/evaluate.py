"""`lab eval RUN`: frozen offline probes on a trained run and on its untrained twin → RUN/results.json and plots.

Features are extracted once per model, in eval mode and from fixed-seed views, from sequences of
max(M_val)+1 views: z of every view, z_AGG at each M_val (views 1..k with actions a_1..a_{k−1},
the last slot zero), and z_AGG of every view alone (one-view sequences). The metric functions of
`lab.eval` (pure, documented there; this module only orchestrates) turn them into the flat keys
of docs/metrics.md, for the trained model (`eval.*`) and for the untrained twin (`init.*`: the
same seed, so the same initial weights, and the same views and probes); `gain.* = eval.* − init.*`
is what training added, the figure a learning gate reads. The twin is the fair control: before it
is probed its BatchNorm running statistics are re-estimated on training sequences, with no
gradient step (`lab.eval.controls`; `eval.control_bn_sequences`), so that a gain is not just the
trained network's BN layers normalising where the twin's, with their initial statistics, do not.
results.json says which control was used (`control`).
"""

from __future__ import annotations

import itertools
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from lab.build import autocast_for, build_parts, build_sampler, resolve_device
from lab.config import RunConfig, load_config
from lab.data.views import ViewSampler
from lab.eval.controls import batchnorm_layers, reestimate_on_training_sequences
from lab.eval.equivariance import equivariance_r2
from lab.eval.features import Features, extract
from lab.eval.fresh_probe import fresh_view_probe_accuracy
from lab.eval.health import collapse_reason, collapse_stats
from lab.eval.leakage import leakage_action_r2, leakage_class_accuracy
from lab.eval.plots import plot_run
from lab.eval.probes import linear_probe_accuracy
from lab.eval.rank import rankme
from lab.eval.subspace import subspace_metrics
from lab.models.seqjepa import SeqJEPA
from lab.eval.stages import stage_metrics
from lab.rundir.checkpoint import load_checkpoint
from lab.rundir.metrics import read_metrics
from lab.rundir.provenance import flat, run_provenance
from lab.rundir.results import write_results_file
from lab.rundir.wandb_run import publish_to_wandb, start_wandb

# eval.* keys that describe the data, not the model: no init.* / gain.* twin
_REFERENCE_KEYS = {"chance"}


R2_GROUPS = {"crop": (slice(0, 4), "mlp"), "jitter": (slice(4, 8), "mlp"), "blur": (slice(8, 9), "linear")}


def compute_metrics(cfg: RunConfig, tr: Features, te: Features, action_names: list[str]) -> dict[str, Any]:
    """All metric names (without the eval./init. prefix) from train/test features (docs/metrics.md)."""
    ev = cfg.eval
    out: dict[str, Any] = {}
    probe = {"max_iter": ev.probe_max_iter}
    for k in sorted(tr.agg):
        out[f"linacc_agg@M{k}"] = linear_probe_accuracy(tr.agg[k], tr.labels, te.agg[k], te.labels, **probe)
    out["linacc_agg"] = out[f"linacc_agg@M{cfg.data.seq_len}"]
    enc = (tr.original, te.original) if ev.enc_probe_input == "original" else (tr.z1, te.z1)
    out["linacc_enc"] = linear_probe_accuracy(enc[0], tr.labels, enc[1], te.labels, **probe)
    regressor = {"head": ev.equi_head, "hidden": ev.equi_hidden, "epochs": ev.equi_epochs, "seed": ev.seed}
    pairs = torch.cat([tr.z1, tr.z2], 1), torch.cat([te.z1, te.z2], 1)
    equi = equivariance_r2(pairs[0], tr.action, pairs[1], te.action, **regressor)
    if ev.r2_heads == "per_factor":  # the released code's heads: MLP crop, MLP jitter, linear blur
        for group, (cols, head) in R2_GROUPS.items():
            r2 = equivariance_r2(pairs[0], tr.action[:, cols], pairs[1], te.action[:, cols], **(regressor | {"head": head}))
            out[f"r2_equi_group@{group}"] = r2["r2_sklearn"]
    leak = leakage_action_r2(tr.single, tr.action, te.single, te.action, **regressor)
    out |= {"r2_equi": equi["r2_sklearn"], "r2_equi_global": equi["r2_global"]}
    out |= {f"r2_equi@{name}": v for name, v in zip(action_names, equi["r2_per_dim"], strict=True)}
    # class from single views' z: views 1 and 2 of every sequence as separate samples
    single_z = [torch.cat([f.z1, f.z2]) for f in (tr, te)]
    single_y = [torch.cat([f.labels, f.labels]) for f in (tr, te)]
    out["leak_linacc"] = leakage_class_accuracy(single_z[0], single_y[0], single_z[1], single_y[1], **probe)
    out |= {"leak_r2": leak["r2_sklearn"], "leak_r2_global": leak["r2_global"]}
    out |= {f"leak_r2@{name}": v for name, v in zip(action_names, leak["r2_per_dim"], strict=True)}
    out["inv_gap"] = out["r2_equi"] - out["leak_r2"]
    agg = tr.agg[cfg.data.seq_len]
    out["rankme_enc"], out["rankme_agg"] = rankme(tr.z1), rankme(agg)
    for name, feats in (("enc", tr.z1), ("agg", agg)):
        stats = collapse_stats(feats)
        out[f"std_{name}"], out[f"cos_{name}"] = stats["normalised_std"], stats["mean_cosine"]
    for prefix, views in (("", tr.z), ("agg_", tr.agg_single)):
        sub = subspace_metrics(views)
        out |= {f"{prefix}rank_eq_eff": sub["rank_eq_eff"], f"{prefix}rank_inv_eff": sub["rank_inv_eff"],
                f"{prefix}var_eq_frac": sub["var_eq_frac"], f"{prefix}subspace_overlap": sub["overlap"]}
    out |= collapse_flags(out)
    out["chance"] = 1.0 / int(tr.labels.max().item() + 1)
    return out


def collapse_flags(metrics: dict[str, Any]) -> dict[str, Any]:
    """collapsed_enc (z_1), collapsed_agg (z_AGG at M_tr) and collapsed (either), each 0.0 or 1.0, from the
    RankMe and mean-cosine figures in `metrics`; collapse_reason names every figure past its limit.

    Both are read: with the coding rate on z and no BatchNorm, z can stay spread while z_AGG
    collapses (issue 22, M2: RankMe 2.1, mean cosine 0.999), and nothing downstream learns."""
    reasons = {part: collapse_reason(metrics[f"rankme_{part}"], {"mean_cosine": metrics[f"cos_{part}"]}, name)
               for part, name in (("enc", "z"), ("agg", "z_AGG"))}
    out: dict[str, Any] = {f"collapsed_{part}": float(r is not None) for part, r in reasons.items()}
    found = [r for r in reasons.values() if r is not None]
    out["collapsed"] = float(bool(found))
    if found:
        out["collapse_reason"] = "; ".join(found)
    return out


@torch.no_grad()
def aggregator_layer_stats(model: SeqJEPA, sampler: ViewSampler, m: int, batch_size: int, seed: int) -> dict[str, float]:
    """`SeqJEPA.aggregator_layer_stats` on one fixed-seed batch of M_tr-view test sequences; {} for
    aggregators without per-layer statistics."""
    if not hasattr(model.aggregator, "layer_stats"):
        return {}
    with sampler.seeded(seed):
        seq = sampler.sample(torch.arange(min(batch_size, sampler.num_samples), device=sampler.device), m + 1)
    return model.aggregator_layer_stats(seq.views[:, :m], seq.actions)


def calibrate_twin(twin: SeqJEPA, sampler: ViewSampler, cfg: RunConfig) -> str:
    """Re-estimate the untrained twin's BatchNorm statistics on eval.control_bn_sequences training
    sequences, in place (`lab.eval.controls.reestimate_on_training_sequences`); returns the control's
    description for results.json."""
    if not batchnorm_layers(twin):
        return "untrained twin (no BatchNorm statistics to re-estimate)"
    ev = cfg.eval
    with autocast_for(sampler.device):
        used = reestimate_on_training_sequences(twin, sampler, cfg.data.seq_len, ev.control_bn_sequences,
                                                ev.batch_size, seed=ev.seed + 3)  # apart from the probes' view seeds
    if not used:
        return "untrained twin, initial BN statistics (not re-estimated)"
    return f"untrained twin, BN statistics re-estimated on {used} training sequences"


def with_twin(trained: dict[str, Any], untrained: dict[str, Any]) -> dict[str, Any]:
    """eval.<k>, init.<k> and gain.<k> = eval − init for every numeric metric (reference keys: eval only)."""
    out = {f"eval.{k}": v for k, v in trained.items()}
    for key, value in untrained.items():
        if key in _REFERENCE_KEYS:
            continue
        out[f"init.{key}"] = value
        if isinstance(value, float) and isinstance(trained.get(key), float):
            out[f"gain.{key}"] = trained[key] - value
    return out


def _features(model: SeqJEPA, cfg: RunConfig, samplers: tuple[ViewSampler, ViewSampler], m_vals: list[int]) -> tuple[Features, Features]:
    model.eval()
    ev = cfg.eval
    originals = ev.enc_probe_input == "original"
    return (extract(model, samplers[0], m_vals, ev.batch_size, ev.num_train, ev.seed, originals),
            extract(model, samplers[1], m_vals, ev.batch_size, ev.num_test, ev.seed + 1, originals))


def _fresh_view_probe(model: SeqJEPA, cfg: RunConfig, samplers: tuple[ViewSampler, ViewSampler], te: Features) -> float:
    """The released code's probe: a linear head trained on train-split z_AGG at M_tr from newly drawn views each epoch."""
    m, ev = cfg.data.seq_len, cfg.eval
    draws = itertools.count(ev.seed + 1000)  # a new view seed per epoch, apart from the fixed-view seeds

    def fresh() -> tuple[torch.Tensor, torch.Tensor]:
        f = extract(model, samplers[0], [m], ev.batch_size, ev.num_train, next(draws))
        return f.agg[m], f.labels

    return fresh_view_probe_accuracy(fresh, te.agg[m], te.labels, samplers[0].num_classes, epochs=ev.fresh_epochs,
                                     lr=ev.fresh_lr, weight_decay=ev.fresh_weight_decay, batch_size=ev.batch_size,
                                     seed=ev.seed)


def evaluate(run_dir: Path | str, device: str | None = None) -> dict[str, Any]:
    """Evaluate the run in `run_dir`; write run_dir/results.json (and eval.copy_to) and plots."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    dev = resolve_device(device or cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    state = load_checkpoint(run_dir, dev)
    t0 = time.perf_counter()
    m_vals = sorted(set(cfg.eval.m_val) | {cfg.data.seq_len, 5})
    samplers = (build_sampler(cfg, "train", dev), build_sampler(cfg, "test", dev))
    untrained, _, _ = build_parts(cfg, samplers[0], dev)  # seeded by train.seed: the run's initial weights
    control = calibrate_twin(untrained, samplers[0], cfg)
    model, _, _ = build_parts(cfg, samplers[0], dev)
    model.load_state_dict(state.model)
    feats = {"eval": _features(model, cfg, samplers, m_vals), "init": _features(untrained, cfg, samplers, m_vals)}
    # One BLAS thread for the scikit-learn probes: multi-threaded OpenBLAS spin-waits on a busy
    # machine and made lbfgs ~50× slower here (2.4 s vs 0.05 s for a 1024×256 probe on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        metrics = {k: compute_metrics(cfg, *f, samplers[0].action_names) for k, f in feats.items()}
        if cfg.eval.stages:  # per-stage probes of the encoder (blockwise or end to end)
            for key, net in (("eval", model), ("init", untrained)):
                metrics[key] |= stage_metrics(net.encoder, *samplers, cfg.eval)
    for key, net in (("eval", model), ("init", untrained)):
        metrics[key] |= aggregator_layer_stats(net, samplers[1], cfg.data.seq_len, cfg.eval.batch_size, cfg.eval.seed + 2)
    if cfg.eval.fresh_view_probe:
        for key, net in (("eval", model), ("init", untrained)):
            metrics[key]["linacc_agg_fresh"] = _fresh_view_probe(net, cfg, samplers, feats[key][1])
    results = with_twin(metrics["eval"], metrics["init"]) | {"control": control}

    history = read_metrics(run_dir)
    if history:  # the last logged training record: train.loss, train.step, …, online.<probe>
        for key, value in history[-1].items():
            results[f"online.{key[6:]}" if key.startswith("probe/") else f"train.{key}"] = value
    results |= flat(run_provenance(cfg, state.train_seconds, state.world_size) | {
        "python": platform.python_version(),
        "device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
        "epochs_trained": state.epoch + 1,
        "eval_wall_s": round(time.perf_counter() - t0, 2),
        "wandb_id": state.wandb_id,
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    spectra = {k: {"z": subspace_metrics(f[0].z), "z_AGG": subspace_metrics(f[0].agg_single)} for k, f in feats.items()}
    figures = plot_run(run_dir, results, history, m_vals, samplers[0].action_names, spectra)
    if cfg.logging.wandb:  # the training run's W&B run gets the results as summary and the plots as images
        link = publish_to_wandb(start_wandb(cfg, run_dir, job_type="eval"), results, figures)
        results |= {f"provenance.{k}": v for k, v in link.items()}
    write_results_file(run_dir / "results.json", results)
    if cfg.eval.copy_to is not None:
        write_results_file(cfg.eval.copy_to, results)
    return results
