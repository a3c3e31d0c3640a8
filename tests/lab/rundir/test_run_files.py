"""lab.rundir: the run directory's contract — the typed checkpoint, provenance with the world size, the
atomic results writer and the run-directory policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lab.config import ConfigError, parse_config
from lab.rundir.checkpoint import Checkpoint, CheckpointError, checkpoint_path, load_checkpoint, save_checkpoint
from lab.rundir.directory import RunStateError, open_run_dir, prepare_run_dir, replace_run_dir
from lab.rundir.provenance import flat, run_provenance
from lab.rundir.results import write_results_file
from tests.lab.conftest import tiny_config

# the keys every checkpoint held on disk before it had a type (lab train's; a stream's lacked the last two)
SAVED_KEYS = {"epoch", "step", "train_seconds", "config_digest", "model", "target", "probes", "optimizer", "rng_cpu",
              "rng_cuda", "wandb_id", "device", "rng_cpu_ranks", "rng_views"}


def _checkpoint(world: int) -> Checkpoint:
    layer = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    return Checkpoint(epoch=4, step=40, train_seconds=12.5, config_digest="abc123", model=layer.state_dict(),
                      target=layer.state_dict(), probes={}, optimizer=opt.state_dict(), rng_cpu=torch.get_rng_state(),
                      rng_cuda=None, wandb_id="w1", device="cpu",
                      rng_cpu_ranks=[torch.get_rng_state()] * world, rng_views=torch.get_rng_state())


def test_a_checkpoint_round_trips_and_stays_the_plain_dict_it_was(tmp_path: Path) -> None:
    saved = _checkpoint(world=2)
    path = save_checkpoint(tmp_path, saved)
    assert path == checkpoint_path(tmp_path) and not path.with_suffix(".tmp").exists()
    on_disk = torch.load(path, weights_only=False)
    assert isinstance(on_disk, dict) and set(on_disk) == SAVED_KEYS  # the file format is unchanged
    loaded = load_checkpoint(tmp_path)
    assert (loaded.epoch, loaded.step, loaded.train_seconds, loaded.config_digest, loaded.wandb_id, loaded.device) == (
        4, 40, 12.5, "abc123", "w1", "cpu")
    for key, value in saved.model.items():
        torch.testing.assert_close(loaded.model[key], value)
    assert loaded.optimizer["param_groups"] == saved.optimizer["param_groups"]
    torch.testing.assert_close(loaded.rng_views, saved.rng_views)
    assert loaded.world_size == 2 and len(loaded.cpu_rng_states) == 2


def test_an_older_checkpoint_without_per_rank_states_loads_as_one_process(tmp_path: Path) -> None:
    """A stream's checkpoint, and lab train's before per-rank RNG states, lack rng_cpu_ranks and rng_views."""
    old = {k: v for k, v in _checkpoint(world=1).to_dict().items() if k not in ("rng_cpu_ranks", "rng_views")}
    checkpoint_path(tmp_path).parent.mkdir(parents=True)
    torch.save(old, checkpoint_path(tmp_path))
    loaded = load_checkpoint(tmp_path)
    assert loaded.world_size == 1 and loaded.rng_views is None
    torch.testing.assert_close(loaded.cpu_rng_states[0], old["rng_cpu"])


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train the run first"):
        load_checkpoint(tmp_path)
    checkpoint_path(tmp_path).parent.mkdir(parents=True)
    torch.save({**_checkpoint(world=1).to_dict(), "extra": 1}, checkpoint_path(tmp_path))
    with pytest.raises(CheckpointError, match="unknown fields \\['extra'\\]"):
        load_checkpoint(tmp_path)
    torch.save({"epoch": 0}, checkpoint_path(tmp_path))
    with pytest.raises(CheckpointError, match="not a lab checkpoint"):
        load_checkpoint(tmp_path)


def test_provenance_names_the_code_the_run_and_the_world_size(tmp_path: Path) -> None:
    cfg = parse_config(tiny_config(tmp_path))
    prov = run_provenance(cfg, train_seconds=1.2345, world_size=2)
    assert prov["world_size"] == 2 and prov["run"] == "tiny" and prov["seed"] == cfg.train.seed
    assert prov["config_hash"] == cfg.digest() and prov["train_wall_s"] == 1.23 and prov["torch"] == torch.__version__
    assert {"git_sha", "git_tree"} <= prov.keys()
    assert flat(prov)["provenance.world_size"] == 2 and all(k.startswith("provenance.") for k in flat(prov))


def test_the_results_writer_keeps_keys_and_order_and_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "run" / "results.json"
    results = {"eval.b": 0.5, "eval.a": [1, 2], "control": "twin", "provenance.world_size": 1}
    assert write_results_file(path, results) == path
    text = path.read_text()
    assert json.loads(text) == results and list(json.loads(text)) == list(results)  # keys and their order kept
    with path.open() as reader:  # a reader of the old file (a gate, lab compare) while the results are rewritten
        write_results_file(path, {**results, "eval.b": 0.75})
        assert reader.read() == text  # still reads the whole old file: the new one replaced it, by rename
    assert json.loads(path.read_text())["eval.b"] == 0.75
    with pytest.raises(TypeError):  # a value JSON cannot hold: nothing is replaced
        write_results_file(path, {"eval.b": object()})
    assert json.loads(path.read_text())["eval.b"] == 0.75
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left behind


def test_the_run_directory_policy(tmp_path: Path) -> None:
    cfg = parse_config(tiny_config(tmp_path))
    prepare_run_dir(cfg, resume=False, overwrite=False)  # nothing there: a new run
    with pytest.raises(RunStateError, match="no checkpoint"):
        prepare_run_dir(cfg, resume=True, overwrite=False)
    assert open_run_dir(cfg) == cfg.run_dir and (cfg.run_dir / "config.yaml").is_file()
    save_checkpoint(cfg.run_dir, _checkpoint(world=1))
    with pytest.raises(RunStateError, match="already holds a run"):
        prepare_run_dir(cfg, resume=False, overwrite=False)
    with pytest.raises(RunStateError, match="pass one of them"):
        prepare_run_dir(cfg, resume=True, overwrite=True)
    prepare_run_dir(cfg, resume=True, overwrite=False)  # continuing it is allowed, and keeps it
    assert checkpoint_path(cfg.run_dir).is_file()
    prepare_run_dir(cfg, resume=False, overwrite=True)  # replacing it deletes it
    assert not cfg.run_dir.exists()

    open_run_dir(cfg)  # a stream has no resume: any existing directory is a run
    with pytest.raises(ConfigError, match="already holds a run"):
        replace_run_dir(cfg, overwrite=False)
    replace_run_dir(cfg, overwrite=True)
    assert not cfg.run_dir.exists()
