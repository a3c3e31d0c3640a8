"""Data parallel: `lab train --nproc 2` (torchrun, gloo, DDP) against one process on the same global batch."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab.cli import app
from lab.train.launch import torchrun_args
from lab.rundir.metrics import read_metrics
from tests.lab.conftest import tiny_config


def ddp_config(tmp_path: Path, name: str, seed: int = 0, **sections: dict) -> Path:
    """The DDP tests' run: tiny ConvNet, shapes with affine views, global batch 32; `sections` update it."""
    raw = tiny_config(tmp_path / "runs", data={"num_train": 128, "num_test": 64, "views": {"kind": "affine"}},
                      model={"aggregator": {"kind": "transformer", "dropout": 0.0}},  # dropout masks differ per process count
                      train={"epochs": 2, "steps_per_epoch": 4, "batch_size": 32, "seed": seed, "threads": 1})
    for section, values in sections.items():
        raw[section] = {**raw[section], **values}
    raw["name"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(path: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, ["train", str(path), *extra])
    assert result.exit_code == 0, result.output


def test_two_processes_on_half_batches_match_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    """2 × B/2 vs 1 × B: same views (the sharded sampler), gradients averaged by DDP. On CPU each rank's
    BatchNorm normalises over its 16 samples instead of 32 (torch has no SyncBatchNorm on CPU), so losses
    differ from the first step, before any update; the tolerance is that effect measured against a control:
    the gap must stay well inside the gap between two seeds of the single process. The final evaluation
    figures must match within the seed-to-seed noise measured for this setup (SEED_SD, below)."""
    handler = signal.getsignal(signal.SIGINT)
    for name, seed, extra in (("ddp", 0, ("--nproc", "2")), ("one", 0, ()), ("seed1", 1, ("--set", "eval.at_end=false"))):
        _train(ddp_config(tmp_path, name, seed), *extra)
    assert signal.getsignal(signal.SIGINT) is handler  # torchrun's handlers do not outlive the launch
    runs = tmp_path / "runs"
    loss = {n: [r["loss"] for r in read_metrics(runs / n)] for n in ("ddp", "one", "seed1")}
    assert len(loss["ddp"]) == len(loss["one"]) == 8  # logged once per global step, on rank 0 only

    summary = json.loads((runs / "ddp" / "ddp.json").read_text())
    assert summary["world"] == 2 and summary["backend"] == "gloo"
    assert summary["param_spread"] == 0.0  # the replicas stayed identical: gradients were all-reduced

    gap = max(abs(a - b) for a, b in zip(loss["ddp"], loss["one"]))
    control = max(abs(a - b) for a, b in zip(loss["seed1"], loss["one"]))
    assert abs(loss["ddp"][0] - loss["one"][0]) < 0.02  # BatchNorm over 16 vs 32 samples, before any update
    assert gap < 0.5 * control, (gap, control)
    results = {n: json.loads((runs / n / "results.json").read_text()) for n in ("ddp", "one")}
    assert set(results["ddp"]) == set(results["one"])  # the DDP run is evaluated like any other
    assert (results["ddp"]["provenance.world_size"], results["one"]["provenance.world_size"]) == (2, 1)
    for key, sigma in SEED_SD.items():
        tolerance = 0.5 * sigma if key in TRAINED_STATS else 3 * 2**0.5 * sigma
        gap = abs(results["ddp"][key] - results["one"][key])
        assert gap <= tolerance, (key, results["ddp"][key], results["one"][key], tolerance)


# Seed-to-seed standard deviation of the final figures of this test's single-process run, over train.seed 0–4
# (docs/scale.md, "Data parallel", has the runs and the command). Two kinds of figure, two tolerances:
# - TRAINED_STATS, which these 8 steps move by 1–10 σ from the untrained twin (cos_agg 0.12 → 0.41, std_enc
#   0.066 → 0.041): the DDP run must be within σ/2 of the single process. Each of the 4 reseeded runs breaks
#   that bound on at least one of them (by 1.08–2.09 σ); the DDP run's largest gap was 0.29 σ.
# - the probes, which read chance at this budget for every run (linacc 0.09–0.25 on 64 test images; a tiny
#   change to the weights flips their predictions as much as a reseed does): the DDP run must lie in the
#   single process's seed distribution, |Δ| ≤ 3·√2·σ (3 σ of the difference of two draws); measured 2.0·√2·σ.
#   eval.r2_equi is left out: at chance its MLP head's R² is unbounded below (one `ralph verify` run of this
#   test read −72.5 for the DDP run against −0.08), so no σ describes it.
SEED_SD = {"eval.std_enc": 0.0105, "eval.cos_enc": 0.0274, "eval.std_agg": 0.0145, "eval.cos_agg": 0.1386,
           "eval.rankme_agg": 1.42, "eval.linacc_agg": 0.0407, "eval.linacc_agg@M5": 0.0434,
           "eval.linacc_enc": 0.0534}
TRAINED_STATS = {"eval.std_enc", "eval.cos_enc", "eval.std_agg", "eval.cos_agg", "eval.rankme_agg"}


def test_a_global_batch_that_does_not_split_is_refused(tmp_path: Path) -> None:
    path = ddp_config(tmp_path, "odd")
    result = CliRunner().invoke(app, ["train", str(path), "--nproc", "3", "--set", "eval.at_end=false"])
    assert result.exit_code != 0
    assert "does not split over 3 processes" in result.output


def test_torchrun_flags_single_and_multi_node() -> None:
    assert torchrun_args(4) == ["--nproc-per-node=4", "--nnodes=1", "--standalone"]
    multi = torchrun_args(8, nnodes=2, node_rank=1, rdzv_endpoint="head:29400", rdzv_id="job7")
    assert multi == ["--nproc-per-node=8", "--nnodes=2", "--node-rank=1", "--rdzv-backend=c10d",
                     "--rdzv-endpoint=head:29400", "--rdzv-id=job7"]
    with pytest.raises(ValueError, match="needs --rdzv-endpoint"):
        torchrun_args(2, nnodes=2)
