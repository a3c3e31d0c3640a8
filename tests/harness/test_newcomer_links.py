"""Linking runs to the plan: checks see RALPH_FEATURE / RALPH_PHASE / RALPH_SEED, and the W&B run a
metric file names is recorded in progress.txt, docs/STATUS.md and the report (runlinks.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.books.records import WandbRun
from harness.cli import app
from harness.judge.runlinks import wandb_runs

LABELS = 'echo "feature=${RALPH_FEATURE-unset} phase=${RALPH_PHASE-unset} seed=${RALPH_SEED-unset}"'


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def write_plan(repo: Path, plan: dict[str, Any]) -> None:
    (repo / "PRD.json").write_text(json.dumps(plan))


def test_checks_see_their_feature_phase_and_seed(prd_repo: Path, prd_dict: dict[str, Any]) -> None:
    prd_dict["features"][0]["verify"] = [
        {"name": "seeded", "run": LABELS + " > labels-{seed}.txt", "seeds": [3, 4]},
        {"name": "plain", "run": LABELS},
    ]
    prd_dict["phases"][0]["exit"] = [{"name": "exit labels", "run": LABELS}]
    write_plan(prd_repo, prd_dict)
    assert ralph("verify", "FEAT-1", "-C", prd_repo).exit_code == 0
    assert (prd_repo / "labels-3.txt").read_text() == "feature=FEAT-1 phase=1 seed=3\n"
    assert (prd_repo / "labels-4.txt").read_text() == "feature=FEAT-1 phase=1 seed=4\n"
    state = json.loads((prd_repo / ".ralph" / "state.json").read_text())
    plain = state["features"]["FEAT-1"]["last_evidence"][1]
    assert plain["output_tail"].strip() == "feature=FEAT-1 phase=1 seed=unset"
    assert ralph("verify", "--phase", "1", "-C", prd_repo).exit_code == 0
    exit_ev = json.loads((prd_repo / ".ralph" / "state.json").read_text())["phases"]["1"]["exit_evidence"][0]
    assert exit_ev["output_tail"].strip() == "feature=unset phase=1 seed=unset"


def test_checks_are_told_which_code_they_run(prd_repo: Path, prd_dict: dict[str, Any]) -> None:
    """The checkout has no .git, so RALPH_HEAD / RALPH_TREE name the commit and the exact tree
    (uncommitted edits included), and lab's provenance reads them there."""
    import git

    from harness.books.git.trees import candidate

    prd_dict["features"][0]["verify"] = [
        {"name": "code", "run": 'echo "head=$RALPH_HEAD tree=$RALPH_TREE"; git rev-parse HEAD 2>/dev/null || echo no-git'},
        {"name": "lab provenance", "run": "python -c 'from lab.rundir.provenance import code_version; print(code_version())'"},
    ]
    write_plan(prd_repo, prd_dict)
    repo = git.Repo(prd_repo)
    repo.index.add(["PRD.json"])
    head = repo.index.commit("plan").hexsha
    (prd_repo / "edit.txt").write_text("not committed yet\n")
    tree = candidate(prd_repo).tree
    assert ralph("verify", "FEAT-1", "-C", prd_repo).exit_code == 0
    evidence = json.loads((prd_repo / ".ralph" / "state.json").read_text())["features"]["FEAT-1"]["last_evidence"]
    assert evidence[0]["output_tail"].split() == [f"head={head}", f"tree={tree}", "no-git"]
    assert evidence[1]["output_tail"].strip() == str({"git_sha": head, "git_tree": tree})


@pytest.mark.parametrize(("data", "expected"), [
    ({"eval.acc": 1, "provenance.wandb_id": "ab12", "provenance.wandb_url": None,
      "provenance.wandb_project": "lab", "provenance.wandb_dir": "/elsewhere/offline-run-1-ab12"},
     [WandbRun(id="ab12", project="lab", dir="/elsewhere/offline-run-1-ab12")]),
    ({"wandb": {"id": "cd34", "url": "https://wandb.ai/t/p/runs/cd34"}},
     [WandbRun(id="cd34", url="https://wandb.ai/t/p/runs/cd34")]),
    ({"train": {"wandb_id": "ef56"}, "eval": {"wandb_id": "gh78", "wandb_url": "https://x/gh78"}},
     [WandbRun(id="ef56"), WandbRun(id="gh78", url="https://x/gh78")]),
    ({"provenance.wandb_id": None, "wandb_url": "https://x"}, []),  # W&B was off: no id, no link
    ([1, 2], []),
])
def test_result_files_name_their_wandb_runs(data: Any, expected: list[WandbRun], tmp_path: Path) -> None:
    assert wandb_runs(data, tmp_path) == expected


def test_an_offline_folder_from_ralphs_checkout_is_recorded_as_a_repository_path(tmp_path: Path) -> None:
    (tmp_path / "runs" / "r" / "wandb" / "offline-run-1-ab12").mkdir(parents=True)
    data = {"provenance.wandb_id": "ab12", "provenance.wandb_dir": "/tmp/ralph-check-x/repo/runs/r/wandb/offline-run-1-ab12"}
    [run] = wandb_runs(data, tmp_path)
    assert run.dir == "runs/r/wandb/offline-run-1-ab12"
    assert run.describe() == ("ab12 (offline, folder runs/r/wandb/offline-run-1-ab12; "
                              "upload: wandb sync runs/r/wandb/offline-run-1-ab12)")


MAKE_RUN = """\
import json
from pathlib import Path

import wandb

from lab.rundir.wandb_run import plan_labels, publish_to_wandb

run = wandb.init(project="ralph-links", dir="runs/r", mode="offline", **plan_labels(0, "smoke"))
print("group", run.group, "tags", ",".join(sorted(run.tags)))
link = publish_to_wandb(run, {"eval.acc": 0.9}, [])
results = {"eval.acc": 0.9, **{f"provenance.{k}": v for k, v in link.items()}}
Path("runs/r/results.json").write_text(json.dumps(results))
"""


def test_an_offline_wandb_run_is_linked_from_progress_status_and_report(prd_repo: Path, prd_dict: dict[str, Any]) -> None:
    """End to end with the lab's own W&B code (offline: the link is the run's id and local folder)."""
    pytest.importorskip("wandb")
    (prd_repo / "make_run.py").write_text(MAKE_RUN)
    (prd_repo / ".gitignore").write_text("runs/\n.ralph/\n")
    prd_dict["features"][0]["verify"] = [
        {"name": "train", "run": "python make_run.py", "timeout_s": 120},
        {"name": "acc gate", "metric": {"file": "runs/r/results.json", "key": "eval.acc", "op": ">=", "value": 0.5}},
    ]
    write_plan(prd_repo, prd_dict)
    verified = ralph("verify", "FEAT-1", "-C", prd_repo)
    assert verified.exit_code == 0, verified.output
    state = json.loads((prd_repo / ".ralph" / "state.json").read_text())
    train, gate = state["features"]["FEAT-1"]["last_evidence"]
    assert "group FEAT-1 tags feature:FEAT-1,phase:1,seed:0" in train["output_tail"]  # the harness's labels reached W&B
    [run] = gate["wandb"]
    assert run["url"] is None and run["project"] == "ralph-links"
    folder = prd_repo / run["dir"]
    assert run["dir"] == "runs/r/wandb" and list(folder.glob(f"offline-run-*/run-{run['id']}.wandb"))

    expected = f"wandb: {run['id']} (offline, project ralph-links, folder {run['dir']}; upload: wandb sync {run['dir']})"
    assert expected in (prd_repo / "progress.txt").read_text()
    assert ralph("status", "--write", "-C", prd_repo).exit_code == 0
    status = (prd_repo / "docs" / "STATUS.md").read_text()
    assert "| W&B runs |" in status and f"`{run['id']}` (offline, `{run['dir']}`)" in status
    assert ralph("status", "--json", "-C", prd_repo).output.count(run["id"]) == 1
    assert ralph("report", "-C", prd_repo).exit_code == 0
    page = (prd_repo / ".ralph" / "report" / "index.html").read_text()
    assert f"<code>{run['id']}</code> (offline: <a href=\"../../{run['dir']}\">{run['dir']}</a>" in page
    assert f"wandb sync {run['dir']}" in page
