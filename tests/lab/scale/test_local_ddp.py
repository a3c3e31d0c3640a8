"""Local (blockwise) learning under data parallel: two gloo processes on half batches against one process
on the whole batch, for the local losses' anti-collapse terms (rate, varcov) and the centred target.

The model has no BatchNorm (group norm in the encoder, LayerNorm in the action embedding and predictor,
no dropout), so the one process and the two ranks compute the same function: what could differ is only
the batch statistics of the local losses, which must be the global batch's (lab.losses.gather)."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import pytest
import torch

from lab.build import build_parts, build_sampler
from lab.config import RunConfig, parse_config
from lab.data.views import Sequence
from lab.losses.objective import objective
from lab.train import ddp
from lab.train.local import local_loss
from lab.train.loop import train_step
from lab.train.optim import build_optimizer
from tests.lab.conftest import tiny_config

BATCH, WORLD = 16, 2


def _config(tmp: Path, anti_collapse: str) -> RunConfig:
    return parse_config(tiny_config(
        tmp / "runs",
        model={"encoder": {"kind": "convnet", "width": 4, "norm": "group"},
               "action_embed": {"kind": "linear_ln", "dim": 8},
               "aggregator": {"kind": "transformer", "dropout": 0.0},
               "predictor": {"kind": "mlp", "hidden": 16, "norm": "layer"}},
        objective={"local": {"enabled": True, "anti_collapse": anti_collapse, "weight": 0.5, "hidden": 8,
                             "center_target": True}},
        train={"batch_size": BATCH}))


def _step(cfg: RunConfig, state: dict, seq: Sequence, replicas: bool) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """One train_step from the saved weights on `seq`: its metrics and the model's gradients."""
    device = torch.device("cpu")
    model, target, probes = build_parts(cfg, build_sampler(cfg, "train", device), device)
    for module, key in ((model, "model"), (target, "target"), (probes, "probes")):
        module.load_state_dict(state[key])
    rank = ddp.current()
    wrapped = (ddp.wrap(model, rank, device), ddp.wrap(probes, rank, device)) if replicas else None
    metrics = train_step(model, target, probes, build_optimizer(cfg.optim, model, probes),
                         functools.partial(objective, cfg.objective), seq, tau=0.99,
                         autocast=contextlib.nullcontext(), extra=local_loss(model, target), replicas=wrapped)
    return metrics, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _rank(rank: int, tmp: str, anti_collapse: str) -> None:
    """One process: its half of the batch through DDP, checked against the single process's figures."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        saved = torch.load(f"{tmp}/saved.pt", weights_only=False)
        rows = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        whole = saved["seq"]
        half = Sequence(whole.views[rows], whole.actions[rows], whole.labels[rows])
        metrics, grads = _step(_config(Path(tmp), anti_collapse), saved, half, replicas=True)
        single = saved["metrics"]
        for key in (k for k in single if k.startswith("local/") and not k.endswith("_jepa")):
            # the anti-collapse terms are the global batch's on every rank (they were each half's)
            assert metrics[key] == pytest.approx(single[key], rel=1e-4, abs=1e-5), key
        mean = ddp.mean_over_ranks(metrics, ddp.current(), torch.device("cpu"))
        for key in ("loss", "loss/pred", *(k for k in single if k.endswith("_jepa"))):
            assert mean[key] == pytest.approx(single[key], rel=1e-4, abs=1e-5), key
        assert grads.keys() == saved["grads"].keys()
        for name, grad in grads.items():  # DDP's average of the ranks' gradients is the one process's gradient
            torch.testing.assert_close(grad, saved["grads"][name], rtol=1e-3, atol=1e-5, msg=name)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("anti_collapse", ["rate", "varcov"])
def test_local_losses_under_ddp_match_one_process_on_the_whole_batch(tmp_path: Path, anti_collapse: str) -> None:
    import torch.multiprocessing as mp

    cfg = _config(tmp_path, anti_collapse)
    device = torch.device("cpu")
    sampler = build_sampler(cfg, "train", device)
    model, target, probes = build_parts(cfg, sampler, device)
    with sampler.seeded(0):
        seq = sampler.sample(torch.arange(BATCH), cfg.data.seq_len + 1)
    state = {"model": model.state_dict(), "target": target.state_dict(), "probes": probes.state_dict()}
    metrics, grads = _step(cfg, state, seq, replicas=False)
    assert any(k.startswith("local/block0_") for k in metrics)  # the local losses did run
    torch.save({**state, "seq": seq, "metrics": metrics, "grads": grads}, tmp_path / "saved.pt")
    mp.spawn(_rank, args=(str(tmp_path), anti_collapse), nprocs=WORLD, join=True)
