"""A tiny base model (random-ish, a few training steps) shared by the llm tests, built through `lab llm base`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lab.llm.cli import app

TINY = ["--vocab", "512", "--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
        "--intermediate", "128", "--ctx", "64", "--batch", "8", "--steps", "30", "--lr", "1e-2"]


def invoke(*args: str, env: dict[str, str] | None = None):
    """Run `lab llm ARGS` in-process (W&B off unless `env` says otherwise); returns the click Result."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"WANDB_MODE": "disabled", **(env or {})})


@pytest.fixture(autouse=True)
def _wandb_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The llm tests do not exercise W&B (tests/lab/test_wandb.py does)."""
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def llm():
    """`llm("finetune", "--steps", 3, …)` runs a `lab llm` command in-process and returns its Result."""
    return invoke


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A 2-layer, 64-wide Llama with a 512-token BPE, trained 30 steps on prose (~0.1 M params)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("llm") / "base"
    result = invoke("base", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return out


def gate_keys(command: str) -> set[str]:
    """Every key a phase-7 gate of PRD.json reads from runs/llm/<command>[-s{seed}]/results.json: the
    tests check the command writes each of them (issue 22: committed results lacked keys their gates read)."""
    import json
    import re

    prd = json.loads((Path(__file__).parents[3] / "PRD.json").read_text())
    pattern = re.compile(rf"runs/llm/{re.escape(command)}(-s\{{seed\}})?/results\.json")
    keys = set()
    for feature in prd["features"]:
        if feature["phase"] != 7:
            continue
        for check in feature["verify"]:
            sides = [check["metric"]] if "metric" in check else list(check.get("compare", {}).get(k) for k in ("a", "b"))
            keys |= {side["key"] for side in sides if side and pattern.fullmatch(side["file"])}
    return keys
