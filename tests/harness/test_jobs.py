"""Job-backed checks without a cluster: the PRD fields, what may come back from a job's log (attacks
included), the cluster's configuration, and a running feature's changes kept out of others' commits.
The same paths against a real Ray head are in tests/ray."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from harness.books.git.commits import commit_held
from harness.books.git.repo import head_sha
from harness.books.git.trees import candidate, changes_between, tree_changes
from harness.judge.executors.ray import (
    ClusterError,
    ResultProblem,
    apply_results,
    cluster_address,
    entrypoint,
    result_block,
    strip_results,
)
from harness.plan.prd import PRDError, load_prd
from harness.settings import RaySettings
from tests.harness.conftest import git

NONCE = "abc123"


def _block(files: dict[str, bytes], nonce: str = NONCE, links: dict[str, str] | None = None) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    text = base64.b64encode(buffer.getvalue()).decode()
    return f"training...\nRALPH-RESULT-BEGIN {nonce} {len(files)}\n{text}\nRALPH-RESULT-END {nonce}\ndone\n"


def test_prd_executor_fields_are_validated(tmp_path: Path, prd_dict: dict) -> None:
    check = prd_dict["features"][0]["verify"][0]
    check.update(executor="ray", resources={"gpus": 1, "cpus": 4}, artifacts=["runs/*.png"])
    (tmp_path / "PRD.json").write_text(json.dumps(prd_dict))
    loaded = load_prd(tmp_path / "PRD.json").features[0].verify[0]
    assert loaded.on_ray and loaded.resources.gpus == 1
    gate = prd_dict["features"][0]["verify"][1]
    gate["executor"] = "ray"
    del check["executor"]
    (tmp_path / "PRD.json").write_text(json.dumps(prd_dict))
    with pytest.raises(PRDError) as err:
        load_prd(tmp_path / "PRD.json")
    text = str(err.value)
    assert "'resources' and 'artifacts' apply only to a check with \"executor\": \"ray\"" in text
    assert "'executor' applies only to a 'run' check" in text


def test_returned_files_land_in_the_repository(tmp_path: Path) -> None:
    log = _block({"out/metrics.json": b'{"acc": 0.9}', "runs/plot.png": b"png"})
    written = apply_results(result_block(log, NONCE), tmp_path, ["out/metrics.json", "runs/*.png"], [])
    assert sorted(written) == ["out/metrics.json", "runs/plot.png"]
    assert json.loads((tmp_path / "out/metrics.json").read_text()) == {"acc": 0.9}
    assert strip_results(log, NONCE) == "training...\n[ralph: 2 returned file(s) read back]\ndone\n"


def test_a_job_cannot_send_back_the_judge_or_write_outside(tmp_path: Path) -> None:
    """The attack: a job's command (the agent's code) prints its own result block, naming the plan,
    the harness's records, a path out of the repository, a link, and a file nobody asked for."""
    repo = tmp_path / "repo"
    (repo / "out").mkdir(parents=True)
    (repo / "PRD.json").write_text("the plan")
    (tmp_path / "outside").mkdir()
    (repo / "linked").symlink_to(tmp_path / "outside")
    evil = _block({"PRD.json": b"forged", ".ralph/state.json": b"{}", "../escape.txt": b"x",
                   "linked/m.json": b"x", "eval/score.py": b"forged", "out/m.json": b"{}"},
                  links={"out/link.json": "/etc/passwd"})
    returns = ["PRD.json", ".ralph/state.json", "../escape.txt", "linked/m.json", "eval/*", "out/*"]
    written = apply_results(result_block(evil, NONCE), repo, returns, protected=["eval/**"])
    assert written == ["out/m.json"]
    assert (repo / "PRD.json").read_text() == "the plan" and not (repo / ".ralph").exists()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "outside" / "m.json").exists()
    assert not (repo / "eval").exists() and not (repo / "out" / "link.json").exists()


def test_only_this_jobs_block_counts(tmp_path: Path) -> None:
    assert result_block(_block({"a.json": b"1"}, nonce="other"), NONCE) is None
    cut = _block({"a.json": b"1"}).split(f"RALPH-RESULT-END {NONCE}")[0]
    with pytest.raises(ResultProblem, match="cut off"):
        result_block(cut, NONCE)
    with pytest.raises(ResultProblem, match="exceed"):
        result_block(f"RALPH-RESULT-ERROR {NONCE} 99 bytes of results exceed the 10 bytes\n", NONCE)


def test_the_cluster_comes_from_the_environment_or_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ClusterError, match="set RAY_ADDRESS or `address` under \\[tool.ralph.executors.ray\\]"):
        cluster_address(RaySettings())
    assert cluster_address(RaySettings(address="http://head:8265")) == "http://head:8265"
    monkeypatch.setenv("RAY_ADDRESS", "http://other:8265")
    assert cluster_address(RaySettings(address="http://head:8265")) == "http://other:8265"


def test_the_job_entry_scrubs_times_out_and_returns_what_changed(tmp_path: Path) -> None:
    """job_entry.py as the cluster runs it, here: the cluster's secrets are gone, the timer stops the
    command's whole group, and only the changed files the globs name come back."""
    root = tmp_path / "wd"
    (root / ".ralph-job").mkdir(parents=True)
    entry = Path(__file__).parents[2] / "harness" / "judge" / "executors" / "job_entry.py"
    (root / ".ralph-job" / "entry.py").write_text(entry.read_text())
    (root / "old.json").write_text("{}")
    cmd = ('test -z "$CLUSTER_TOKEN" && echo "$RALPH_FEATURE" && echo 1 > new.json && echo 2 > other.txt '
           '&& (sleep 30 & echo $! > bg.pid; wait)')
    line = entrypoint(cmd, timeout_s=2, returns=["*.json"], nonce=NONCE, allow=[], env={"RALPH_FEATURE": "F-1"},
                      max_return_bytes=10_000)
    res = subprocess.run(line, shell=True, cwd=root, capture_output=True, text=True, timeout=60,
                         env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "CLUSTER_TOKEN": "s3cret"})
    assert res.returncode == 124, res.stdout + res.stderr
    assert "F-1" in res.stdout and f"RALPH-TIMEOUT {NONCE}" in res.stdout
    with tarfile.open(fileobj=io.BytesIO(result_block(res.stdout, NONCE)), mode="r:gz") as tar:
        assert tar.getnames() == ["new.json"]
    grandchild = int((root / "bg.pid").read_text())
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]
    # the timer killed the command's whole process group, its background sleep included


def test_returned_metric_files_under_an_ignored_folder_are_not_committed(prd_repo: Path) -> None:
    """Issue 24 (minor): the files a Ray job returned were force-added, so runs/ (ignored) was committed. They stay
    in the working tree for the gates, out of the commit, named in it as left out."""
    from harness.plan.prd import load_prd

    (prd_repo / ".gitignore").write_text(".ralph/\nruns/\nscratch/\n")
    git(prd_repo, "add", "-A")
    git(prd_repo, "commit", "-qm", "plan")
    (prd_repo / "train.py").write_text("the job's code\n")
    base = head_sha(prd_repo)
    held = changes_between(prd_repo, f"{base}^{{tree}}", candidate(prd_repo).tree)
    (prd_repo / "runs" / "q-s0").mkdir(parents=True)
    (prd_repo / "runs" / "q-s0" / "results.json").write_text('{"acc": 0.9}')
    (prd_repo / "summary.json").write_text("{}")
    (prd_repo / "scratch").mkdir()
    (prd_repo / "scratch" / "seeds.json").write_text("{}")
    feature = load_prd(prd_repo / "PRD.json").features[0]
    done = commit_held(prd_repo, feature, 1, [], held,
                       outputs=["runs/q-s0/results.json", "scratch/seeds.json", "summary.json"])
    assert set(git(prd_repo, "show", "--name-only", "--format=", done.sha).split()) == {"train.py", "summary.json"}
    assert [p for p, _ in done.skipped] == ["runs/q-s0/results.json", "scratch/seeds.json"]
    assert ("scratch/seeds.json", "ignored by .gitignore") in done.skipped
    assert "runs/q-s0/results.json" in git(prd_repo, "show", "-s", "--format=%B", done.sha)
    assert (prd_repo / "runs" / "q-s0" / "results.json").is_file()


def test_a_running_features_changes_stay_out_of_another_features_commit(prd_repo: Path) -> None:
    git(prd_repo, "add", "-A")
    git(prd_repo, "commit", "-qm", "plan")
    (prd_repo / "train.py").write_text("job feature's work\n")
    base = head_sha(prd_repo)
    job_tree = candidate(prd_repo).tree
    held = changes_between(prd_repo, f"{base}^{{tree}}", job_tree)
    assert set(held) == {"train.py"}
    (prd_repo / "notes.md").write_text("another feature's work\n")
    other = candidate(prd_repo, held=held)
    assert tree_changes(prd_repo, f"{base}^{{tree}}", other.tree) == ["notes.md"]
    from harness.plan.prd import load_prd

    feature = load_prd(prd_repo / "PRD.json").features[0]
    (prd_repo / "result.json").write_text("{}")
    done = commit_held(prd_repo, feature, 1, [], held, outputs=["result.json"])
    assert set(git(prd_repo, "show", "--name-only", "--format=", done.sha).split()) == {"train.py", "result.json"}
    assert "notes.md" in git(prd_repo, "status", "--porcelain")  # the other feature's work is left alone
    (prd_repo / "train.py").write_text("changed while the job ran\n")
    with pytest.raises(Exception, match="train.py changed while its jobs ran"):
        commit_held(prd_repo, feature, 1, [], {"train.py": ("100644", "0" * 40)}, outputs=[])
