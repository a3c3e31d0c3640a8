"""A `lab train --nproc 2` run that fails after k epochs and is resumed continues the same schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lab.cli import app
from lab.rundir.checkpoint import load_checkpoint
from lab.rundir.metrics import read_metrics
from tests.lab.scale.test_ddp import ddp_config

# Imported by every Python process started with its folder on PYTHONPATH. In a torchrun worker (LOCAL_RANK
# set) it makes the LAB_FAIL_AT_STEP-th training step raise on every rank, as a preempted or crashed job
# would stop: no rank is left waiting in an all-reduce, the launcher reports the failure.
_FAULT = '''
import os
if "LOCAL_RANK" in os.environ and os.environ.get("LAB_FAIL_AT_STEP"):
    import lab.train.loop as loop
    real, fail_at, calls = loop.train_step, int(os.environ["LAB_FAIL_AT_STEP"]), [0]
    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == fail_at:
            raise SystemExit(f"injected failure at step {fail_at}")
        return real(*args, **kwargs)
    loop.train_step = failing
'''


def _train(path: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, ["train", str(path), "--nproc", "2", *extra])
    return result.output if result.exit_code == 0 else pytest.fail(result.output)


def test_a_resumed_two_process_run_continues_the_uninterrupted_schedule(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    epochs, steps = 3, 4
    sections = {"train": {"epochs": epochs, "steps_per_epoch": steps}, "eval": {"at_end": False}}
    straight, broken = ddp_config(tmp_path, "straight", **sections), ddp_config(tmp_path, "broken", **sections)
    _train(straight)

    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(_FAULT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(inject), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("LAB_FAIL_AT_STEP", str(2 * steps + 2))  # mid-way through the third epoch
    failed = CliRunner().invoke(app, ["train", str(broken), "--nproc", "2"])
    assert failed.exit_code != 0 and "a training process failed" in failed.output, failed.output
    assert load_checkpoint(tmp_path / "runs" / "broken").epoch == 1  # stopped after k = 2 epochs
    monkeypatch.delenv("LAB_FAIL_AT_STEP")

    one = CliRunner().invoke(app, ["train", str(broken), "--resume"])  # another process count is refused
    assert one.exit_code == 2 and "resume it with --nproc 2" in one.output, one.output
    _train(broken, "--resume")

    runs = tmp_path / "runs"
    a, b = read_metrics(runs / "straight"), read_metrics(runs / "broken")
    assert [r["step"] for r in b] == [r["step"] for r in a] == list(range(1, epochs * steps + 1))
    for ra, rb in zip(a, b):  # the schedule positions are the same numbers, the losses equal to float noise
        assert (rb["epoch"], rb["lr"], rb["tau"]) == (ra["epoch"], ra["lr"], ra["tau"]), rb["step"]
        assert rb["loss"] == pytest.approx(ra["loss"], abs=1e-6), rb["step"]
    assert len({r["lr"] for r in a}) > 2 and len({r["tau"] for r in a}) == epochs  # the schedules do move
    end_a, end_b = load_checkpoint(runs / "straight"), load_checkpoint(runs / "broken")
    assert end_a.step == end_b.step == epochs * steps
    for part in ("model", "target"):
        for key, value in getattr(end_a, part).items():
            torch.testing.assert_close(getattr(end_b, part)[key], value, msg=f"{part}.{key}")


def test_ctrl_c_stops_every_process_and_says_how_to_resume(tmp_path: Path) -> None:
    """SIGINT to the launcher (Ctrl-C, or a scheduler's signal): exit 130 with the resume hint, no worker tracebacks."""
    path = ddp_config(tmp_path, "cut", train={"epochs": 50, "steps_per_epoch": 4}, eval={"at_end": False})
    checkpoint = tmp_path / "runs" / "cut" / "checkpoints" / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", "from lab.cli import app; app()", "train", str(path), "--nproc", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.is_file():
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    assert "continue with --resume" in output and "Traceback" not in output, output
    assert load_checkpoint(tmp_path / "runs" / "cut").epoch < 49  # stopped early, a finished epoch kept
