from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import lab.train.loop as loop
from lab.cli import app
from lab.config import parse_config
from lab.rundir.checkpoint import load_checkpoint
from lab.rundir.metrics import read_metrics
from tests.lab.conftest import tiny_config

runner = CliRunner()


def test_train_two_steps_then_eval_and_gate(tiny_yaml: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "--set", "name=cli"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "cli"
    assert {"config.yaml", "metrics.jsonl", "results.json"} <= {p.name for p in run.iterdir()}
    assert [r["step"] for r in read_metrics(run)] == [1, 2]
    results = json.loads((run / "results.json").read_text())
    for key in ("eval.linacc_agg", "eval.linacc_agg@M1", "eval.linacc_agg@M2", "eval.linacc_agg@M3", "eval.linacc_enc",
                "eval.r2_equi", "eval.r2_equi_global", "eval.leak_linacc", "eval.leak_r2", "eval.rankme_enc",
                "eval.rankme_agg", "provenance.git_sha", "provenance.seed", "provenance.torch", "provenance.device",
                "provenance.train_wall_s", "provenance.config_hash", "train.loss", "online.linacc_agg"):
        assert key in results, key
    assert results["eval.linacc_agg"] == results["eval.linacc_agg@M2"]
    assert 0.0 <= results["eval.linacc_agg"] <= 1.0 and results["eval.rankme_enc"] >= 1.0
    assert {p.name for p in (run / "plots").iterdir()} == {"curves.png", "acc_vs_mval.png", "r2_per_dim.png", "health.png", "spectra.png"}

    passed = runner.invoke(app, ["gate", str(run)])
    assert passed.exit_code == 0, passed.output
    gates = tmp_path / "gates.yaml"
    gates.write_text(yaml.safe_dump(["eval.linacc_agg > 1.5"]))
    failed = runner.invoke(app, ["gate", str(run), "--config", str(gates)])
    assert failed.exit_code == 1 and "FAIL" in failed.output


def test_bad_key_fails_before_training(tiny_yaml: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "--set", "model.agg_layer=2"])
    assert result.exit_code == 2
    assert "unknown key 'agg_layer' in section 'model'" in result.output
    assert not (tmp_path / "runs").exists()


def test_existing_run_needs_resume(tiny_yaml: Path, tmp_path: Path) -> None:
    args = ["train", str(tiny_yaml), "--set", "eval.at_end=false"]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.output
    missing = runner.invoke(app, [*args, "--set", "name=other", "--resume"])
    assert missing.exit_code == 2 and "no checkpoint" in missing.output
    both = runner.invoke(app, [*args, "--resume", "--overwrite"])
    assert both.exit_code == 2 and "pass one of them" in both.output


def test_overwrite_starts_the_run_again(tiny_yaml: Path, tmp_path: Path) -> None:
    args = ["train", str(tiny_yaml), "--set", "eval.at_end=false", "--set", "name=again"]
    assert runner.invoke(app, args).exit_code == 0
    run = tmp_path / "runs" / "again"
    stale = run / "stale.txt"
    stale.write_text("from the earlier run")
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and (run / "metrics.jsonl").is_file()


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sections = {"train": {"epochs": 3, "steps_per_epoch": 2}, "eval": {"at_end": False}}
    straight = parse_config({**tiny_config(tmp_path / "a", **sections)})
    loop.train(straight)

    cfg = parse_config({**tiny_config(tmp_path / "b", **sections)})
    real_step, calls = loop.train_step, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # mid-way through the second epoch
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.train(cfg)
    assert load_checkpoint(cfg.run_dir).epoch == 0
    monkeypatch.setattr(loop, "train_step", real_step)
    loop.train(cfg, resume=True)

    a, b = load_checkpoint(straight.run_dir), load_checkpoint(cfg.run_dir)
    assert a.step == b.step == 6
    for key, value in a.model.items():
        torch.testing.assert_close(b.model[key], value, msg=key)
    assert [r["step"] for r in read_metrics(cfg.run_dir)] == [r["step"] for r in read_metrics(straight.run_dir)]


def test_wandb_offline_run_id_is_recorded(tmp_path: Path) -> None:
    cfg = parse_config(tiny_config(tmp_path, logging={"wandb": True, "project": "lab-tests"}, eval={"at_end": False}))
    loop.train(cfg)
    run_id = (cfg.run_dir / "wandb_id").read_text()
    assert run_id and load_checkpoint(cfg.run_dir).wandb_id == run_id
    assert any(p.name.startswith("offline-run-") and p.name.endswith(run_id) for p in (cfg.run_dir / "wandb").iterdir())


def test_missing_dataset_is_a_clear_error_and_leaves_no_run(tiny_yaml: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "--set", "data.name=cifar10", "--data-root", str(tmp_path / "none")])
    assert result.exit_code == 2 and "expected layout" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("model", "objective", "terms"), [
    ({}, {"target": "stopgrad", "symmetric": True, "rate": {"weight": 1.0, "features": "both"}},
     {"loss/pred", "loss/rate_z", "loss/rate_agg"}),
    ({"aggregator": {"kind": "crate_alpha", "layers": 2}}, {"loss": "sharpened", "rate": {"weight": 0.5}},
     {"loss/pred", "loss/rate_z"}),
])
def test_variants_train_log_each_term_and_evaluate_with_the_twin(tmp_path: Path, model: dict, objective: dict,
                                                                  terms: set[str]) -> None:
    from lab.evaluate import evaluate

    cfg = parse_config(tiny_config(tmp_path, model=model, objective=objective, eval={"at_end": False}))
    loop.train(cfg)
    record = read_metrics(cfg.run_dir)[-1]
    assert terms <= set(record) and record["loss"] == pytest.approx(
        record["loss/pred"] - record["rate_weight"] * sum(record[t] for t in terms - {"loss/pred"}), rel=1e-4)
    results = evaluate(cfg.run_dir)
    for key in ("linacc_agg", "r2_equi", "inv_gap", "rankme_enc", "cos_enc", "std_agg", "rank_eq_eff", "subspace_overlap"):
        assert results[f"gain.{key}"] == pytest.approx(results[f"eval.{key}"] - results[f"init.{key}"])
    assert results["eval.collapsed"] in (0.0, 1.0) and "init.chance" not in results
    crate = model.get("aggregator", {}).get("kind") == "crate_alpha"
    assert ("eval.layer1.sparsity" in results) == crate
    # CRATE's per-layer statistics are logged during training too, each a fraction / a positive rate, and plotted
    history = read_metrics(cfg.run_dir)
    assert all(("agg/layer1.sparsity" in r) == crate for r in history)
    if crate:
        assert all(0 <= r["agg/layer1.sparsity"] <= 1 and r["agg/layer1.rate_heads"] > 0 for r in history)
    assert (cfg.run_dir / "plots" / "layers_train.png").is_file() == crate


def test_untrained_twin_is_the_runs_initialisation(tmp_path: Path) -> None:
    from lab.build import build_parts, build_sampler

    cfg = parse_config(tiny_config(tmp_path, train={"epochs": 1, "steps_per_epoch": 1}, eval={"at_end": False}))
    sampler = build_sampler(cfg, "train", torch.device("cpu"))
    first, _, _ = build_parts(cfg, sampler, torch.device("cpu"))
    torch.randn(100)  # whatever ran in between
    twin, _, _ = build_parts(cfg, sampler, torch.device("cpu"))
    for (name, a), b in zip(first.state_dict().items(), twin.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_evaluation_is_the_same_in_any_process(tmp_path: Path) -> None:
    """Two evaluations of one run, with the global RNG in different states (as in two processes,
    whose torch seeds differ), give the same figures: the views are drawn from eval.seed alone."""
    from lab.evaluate import evaluate
    from lab.train.loop import train

    cfg = parse_config(tiny_config(tmp_path, train={"epochs": 1, "steps_per_epoch": 2}, eval={"at_end": False, "stages": True}))
    train(cfg)
    figures = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        results = evaluate(cfg.run_dir)
        figures.append({k: v for k, v in results.items() if k.split(".")[0] in ("eval", "init", "gain")})
    assert figures[0] == figures[1]


def test_frozen_encoder_arm_keeps_the_fair_twins_encoder_and_trains_the_rest(tmp_path: Path) -> None:
    """train.freeze_encoder: the encoder's weights stay the initial ones and its BatchNorm statistics are the
    fair twin's (same sequences and seed), so every encoder figure equals the twin's; the aggregator trains."""
    from lab.build import build_parts, build_sampler
    from lab.evaluate import evaluate

    cfg = parse_config(tiny_config(tmp_path, model={"aggregator": {"kind": "crate", "layers": 1}},  # layer_stats path
                                   train={"freeze_encoder": True, "epochs": 2, "steps_per_epoch": 2},
                                   eval={"at_end": False, "control_bn_sequences": 32, "batch_size": 16}))
    loop.train(cfg)
    trained = load_checkpoint(cfg.run_dir).model
    init, _, _ = build_parts(cfg, build_sampler(cfg, "train", torch.device("cpu")), torch.device("cpu"))
    for key, value in init.state_dict().items():
        if key.startswith("encoder.") and "running" not in key and "num_batches" not in key:
            torch.testing.assert_close(trained[key], value, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(trained[k], v) for k, v in init.state_dict().items() if k.startswith("aggregator."))
    results = evaluate(cfg.run_dir)
    for key in ("linacc_enc", "rankme_enc", "r2_equi", "cos_enc"):
        assert results[f"gain.{key}"] == 0.0, key  # the same encoder as the fair twin: identical features


def test_frozen_encoder_is_refused_with_local_learning(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="freeze_encoder"):
        parse_config(tiny_config(tmp_path, train={"freeze_encoder": True}, objective={"local": {"enabled": True}}))
