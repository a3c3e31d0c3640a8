"""The documented `lab` commands never dirty a clone: outputs go to git-ignored run directories only,
and copying results into experiments/ takes an explicit `lab publish` / `lab train --publish`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from lab.cli import app
from lab.config import load_config

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/lab.md", "docs/llm.md"]
# ralph verifies on an export of the candidate tree, which has no .git: what git ignores cannot be asked there.
needs_git = pytest.mark.skipif(not (REPO / ".git").exists(),
                               reason="not a git checkout (e.g. ralph's export of the candidate tree): git cannot say what it ignores")
CONFIGS = sorted(p.relative_to(REPO) for p in [*REPO.glob("experiments/**/*.yaml"), *REPO.glob("configs/**/*.yaml")])


def documented_commands() -> list[tuple[str, list[str]]]:
    """(doc, argv after `lab`) for every `lab …` line in the docs' code blocks (comments dropped, `&&` split)."""
    found = []
    for doc in DOCS:
        blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", (REPO / doc).read_text(), flags=re.S)
        for line in "\n".join(blocks).splitlines():
            for part in line.split("#", 1)[0].split("&&"):
                words = shlex.split(part)
                if words[:1] == ["lab"]:
                    found.append((doc, words[1:]))
    return found


def _resolve(argv: list[str]) -> tuple[str, Any, dict]:
    """The subcommand path ("train", "llm sweep lr") and click command an argv reaches, and its parsed
    parameters (nothing is run)."""
    names, command = [], typer.main.get_command(app)
    # Through list_commands/get_command (typer's own click, so no isinstance): lab's deferred sub-apps
    # are not in `commands` until looked up. Neither method reads its context here.
    while argv and hasattr(command, "get_command") and argv[0] in command.list_commands(None):
        names, command, argv = [*names, argv[0]], command.get_command(None, argv[0]), argv[1:]
    name = " ".join(names)
    return name, command, command.make_context(name, list(argv), resilient_parsing=True).params


def output_paths(argv: list[str]) -> list[Path]:
    """Every path a lab command writes to: `--out` options, the run directory of train/eval, publish targets."""
    name, command, params = _resolve(argv)
    paths = [Path(params[p.name]) for p in command.params if "--out" in getattr(p, "opts", []) and params.get(p.name)]
    if name == "train" and (REPO / str(params["config"])).is_file():
        overrides = [*(params.get("overrides") or []), *params["set_"]]
        cfg = load_config(REPO / str(params["config"]), overrides)
        paths += [cfg.run_dir] + ([cfg.eval.copy_to] if cfg.eval.copy_to else [])
        paths += [Path(params["publish_to"])] if params.get("publish_to") else []
    if name == "eval":
        paths.append(Path(params["run"]))
    if name == "publish":
        paths.append(Path(params["dest"]))
    return paths


def ignored(path: Path) -> bool:
    """git ignores `path` (existing or not) and tracks nothing under it."""
    check = subprocess.run(["git", "check-ignore", "-q", str(path / "x")], cwd=REPO)
    tracked = subprocess.run(["git", "ls-files", "--", str(path)], cwd=REPO, capture_output=True, text=True).stdout
    return check.returncode == 0 and not tracked.strip()


def test_docs_name_the_commands_checked() -> None:
    names = {tuple(argv[:2]) for _, argv in documented_commands()}
    assert {("train", "experiments/step1-baseline/smoke.yaml"), ("llm", "base"), ("llm", "finetune")} <= names


@needs_git
@pytest.mark.parametrize(("doc", "argv"), documented_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_documented_command_writes_only_ignored_paths(doc: str, argv: list[str]) -> None:
    if argv[0] == "publish" or "--publish" in argv:
        pytest.skip("copying into a tracked folder is what lab publish is for: the explicit choice")
    for path in output_paths(argv):
        assert ignored(path), f"`lab {' '.join(argv)}` in {doc} writes {path}, which git tracks or does not ignore"


@needs_git
@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_committed_configs_write_only_under_runs(config: Path) -> None:
    cfg = load_config(REPO / config)
    assert cfg.eval.copy_to is None, f"{config} sets eval.copy_to: publish explicitly instead (lab publish RUN DEST)"
    assert ignored(cfg.run_dir)


@needs_git
def test_output_paths_see_a_publish_and_a_tracked_out() -> None:
    """The checker itself: it reports a tracked destination when a command names one."""
    assert not all(map(ignored, output_paths(["publish", "runs/x", "experiments/step1-baseline/results.json"])))
    assert not all(map(ignored, output_paths(["llm", "finetune", "--out", "experiments/llm-finetune"])))
    assert all(map(ignored, output_paths(["llm", "finetune"])))


def _clone(tmp_path: Path) -> Path:
    """A fresh repository holding the working tree's tracked files (uncommitted edits included)."""
    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source, target = REPO / os.fsdecode(name), clone / os.fsdecode(name)
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    subprocess.run([*git, "add", "-A"], cwd=clone, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=clone, check=True)
    return clone


@needs_git
def test_readme_train_eval_gate_leave_a_clone_clean(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    tiny = ["train.epochs=1", "train.steps_per_epoch=2", "eval.num_train=64", "eval.num_test=64", "eval.m_val=[1]",
            "eval.equi_epochs=2", "eval.equi_hidden=16", "eval.probe_max_iter=20", "logging.wandb=false",
            "logging.progress=false"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}

    def lab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(Path(sys.executable).parent / "lab"), *args], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=600)

    def status() -> str:
        return subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout

    trained = lab("train", "experiments/step1-baseline/smoke.yaml", *tiny)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert lab("eval", "runs/step1-smoke").returncode == 0
    assert lab("gate", "runs/step1-smoke", "--config", "experiments/step1-baseline/smoke.yaml").returncode in (0, 1)
    assert status() == ""
    published = lab("publish", "runs/step1-smoke", "experiments/step1-baseline/results.json")
    assert published.returncode == 0, published.stdout + published.stderr
    assert status().split() == ["M", "experiments/step1-baseline/results.json"]
