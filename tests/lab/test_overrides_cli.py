"""`lab train CONFIG key=value …` (positional overrides, the Hydra habit) and `--publish`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from lab.cli import app

runner = CliRunner()


def test_positional_overrides_reach_nested_keys(tiny_yaml: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "name=pos", "model.encoder.width=6", "eval.at_end=false",
                                 "--set", "train.seed=3"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "runs" / "pos" / "config.yaml").read_text())
    assert saved["model"]["encoder"]["width"] == 6 and saved["train"]["seed"] == 3


def test_positional_override_typo_lists_allowed_keys(tiny_yaml: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "model.encoder.widht=6"])
    assert result.exit_code == 2
    assert "unknown key 'widht' in section 'model.encoder'; allowed keys: kind, width" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_word_without_equals_is_refused_with_the_form(tiny_yaml: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tiny_yaml), "epochs"])
    assert result.exit_code == 2
    assert "unexpected argument 'epochs': overrides are key=value" in result.output
    assert not (tmp_path / "runs").exists()


def test_publish_copies_results_and_plots_on_request(tiny_yaml: Path, tmp_path: Path) -> None:
    dest = tmp_path / "experiments" / "tiny"
    result = runner.invoke(app, ["train", str(tiny_yaml), "--publish", str(dest)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny"
    assert json.loads((dest / "results.json").read_text()) == json.loads((run / "results.json").read_text())
    assert {p.name for p in dest.glob("*.png")} == {p.name for p in (run / "plots").iterdir()}
    one = runner.invoke(app, ["publish", str(run), str(tmp_path / "only.json")])
    assert one.exit_code == 0 and (tmp_path / "only.json").read_text() == (run / "results.json").read_text()


def test_publish_needs_an_evaluated_run(tiny_yaml: Path, tmp_path: Path) -> None:
    refused = runner.invoke(app, ["train", str(tiny_yaml), "eval.at_end=false", "--publish", str(tmp_path / "d")])
    assert refused.exit_code == 2 and "--publish needs the run evaluated" in refused.output
    missing = runner.invoke(app, ["publish", str(tmp_path / "runs" / "nothing"), str(tmp_path / "d")])
    assert missing.exit_code == 2 and "no results at" in missing.output and "lab eval" in missing.output
