"""W&B (offline): eval results as the summary, plots as images, feature/phase/seed as group and tags,
the run's link in results.json — read back from the offline run files. Also for the LLM track."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab.cli import app
from lab.rundir.wandb_run import plan_labels, strip_seed
from tests.lab.conftest import tiny_config
from tests.lab.llm.conftest import TINY, invoke
from tests.lab.wandb_records import offline_runs


@pytest.fixture
def plan_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALPH_FEATURE", "S1-TEST")
    monkeypatch.setenv("RALPH_PHASE", "1")


def test_train_and_eval_land_in_one_linked_wandb_run(tmp_path: Path, plan_env: None) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs", logging={"wandb": True}, train={"seed": 2})))
    result = CliRunner().invoke(app, ["train", str(config), "name=tiny-s2"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "tiny-s2"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["provenance.wandb_id"] == (run_dir / "wandb_id").read_text()
    assert results["provenance.wandb_project"] == "seq-jepa-lab" and results["provenance.wandb_url"] is None  # offline
    assert Path(results["provenance.wandb_dir"]) == run_dir / "wandb"

    recorded = offline_runs(run_dir / "wandb")
    assert {r.run_id for r in recorded["runs"]} == {results["provenance.wandb_id"]}  # train, then eval resumed it
    for run in recorded["runs"]:
        assert run.run_group == "S1-TEST" and {"feature:S1-TEST", "phase:1", "seed:2"} <= set(run.tags)
    for key in ("eval.linacc_agg", "eval.r2_equi", "eval.rankme_enc"):
        assert recorded["summary"][key] == pytest.approx(results[key])
    assert {"plots/curves", "plots/acc_vs_mval", "plots/r2_per_dim"} <= set(recorded["images"])


def test_without_the_harness_the_group_is_the_name_without_its_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RALPH_FEATURE", raising=False)
    monkeypatch.delenv("RALPH_PHASE", raising=False)
    assert plan_labels(0, strip_seed("step1-quick-s0", 0)) == {"group": "step1-quick", "tags": ["seed:0"]}
    assert strip_seed("run_seed12", 12) == "run" and strip_seed("step1-s10", 1) == "step1-s10"
    assert plan_labels(None, "llm-base") == {"group": "llm-base", "tags": []}


def test_llm_command_logs_results_and_figures(tmp_path: Path, plan_env: None) -> None:
    out = tmp_path / "base"
    result = invoke("base", "--out", out, *TINY[:-4], "--steps", "4", env={"WANDB_MODE": "offline"})
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    link = results["provenance"]
    recorded = offline_runs(out / "wandb")
    [run] = recorded["runs"]
    assert run.run_id == link["wandb_id"] and run.display_name == "llm-base"
    assert run.run_group == "S1-TEST" and {"feature:S1-TEST", "phase:1", "seed:0"} <= set(run.tags)
    assert recorded["summary"]["val_loss"] == pytest.approx(results["val_loss"])
    assert recorded["summary"]["curve.tokens_per_s"] == pytest.approx(results["curve"]["tokens_per_s"])
    assert "plots/loss" in recorded["images"]


def test_a_run_left_open_by_an_interrupted_command_does_not_capture_the_next_one(
        tmp_path: Path, plan_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flaky pair of issue 22: a W&B test interrupted mid-training (pytest-timeout's signal, a
    BaseException, escapes CliRunner) left its run open, and wandb.init then returned that open run
    to the next W&B test in the same xdist worker — another run's id, folder and labels."""
    from lab.config import parse_config
    from lab.train import loop
    from lab.rundir.wandb_run import start_wandb

    cfg = parse_config(tiny_config(tmp_path / "a", logging={"wandb": True}, eval={"at_end": False}))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what a timeout or Ctrl-C does mid-step

    monkeypatch.setattr(loop, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.train(cfg)
    stale = (cfg.run_dir / "wandb_id").read_text()

    other = parse_config(tiny_config(tmp_path / "b", logging={"wandb": True}, train={"seed": 5}) | {"name": "other-s5"})
    other.run_dir.mkdir(parents=True)
    run = start_wandb(other, other.run_dir, job_type="eval")
    try:
        assert run.id != stale and (other.run_dir / "wandb_id").read_text() == run.id
        assert Path(run.dir).is_relative_to(other.run_dir / "wandb") and "seed:5" in run.tags
    finally:
        run.finish()
