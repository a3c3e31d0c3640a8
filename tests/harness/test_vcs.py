from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.books.git.commits import commit_feature
from harness.books.git.refs import tag_phase_approved, tag_phase_rejected
from harness.books.git.repo import VCSError, head_sha
from harness.books.records import Evidence
from harness.plan.prd import Feature
from tests.harness.conftest import git

FEATURE = Feature(id="FEAT-010", phase=1, title="Baseline, smoke run", verify=[])
EVIDENCE = [
    Evidence(check="smoke", kind="run", verdict="pass", detail="exit 0", duration_s=1.0),
    Evidence(check="gate", kind="metric", verdict="pass", detail="ok", duration_s=0.0,
             figures={"eval.linacc_agg@M5": 0.41234567, "eval.linacc_agg@M5[seed=0]": 0.4}),
]


def trailers(repo: Path) -> dict[str, str]:
    msg = git(repo, "log", "-1", "--format=%B")
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=msg, capture_output=True, text=True,
                            check=True).stdout
    return dict(line.split(": ", 1) for line in parsed.splitlines())


def test_first_commit_with_trailers_and_exclusions(repo: Path):
    assert head_sha(repo) is None
    (repo / "lab.py").write_text("print(1)\n")
    (repo / "runs" / "r1").mkdir(parents=True)
    (repo / "runs" / "r1" / "results.json").write_text("{}")
    (repo / "model.pt").write_bytes(b"x")
    (repo / ".ralph").mkdir()
    (repo / ".ralph" / "state.json").write_text("{}")
    (repo / "big.bin").write_bytes(b"0" * 2048)
    git(repo, "add", "model.pt")  # staged by someone else: must still not be committed
    result = commit_feature(repo, FEATURE, 2, EVIDENCE, max_file_bytes=1024)
    assert result.sha == head_sha(repo) == git(repo, "rev-parse", "HEAD")
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD").split() == ["lab.py"]
    assert {p for p, _ in result.skipped} == {"runs/r1/results.json", "model.pt", "big.bin"}  # .ralph/: silent
    assert git(repo, "log", "-1", "--format=%s") == "feat(FEAT-010): Baseline, smoke run"
    t = trailers(repo)
    assert t["Ralph-Feature"] == "FEAT-010" and t["Ralph-Attempt"] == "2"
    assert t["Ralph-Checks"] == "smoke=pass, gate=pass"
    assert t["Ralph-Metrics"] == "eval.linacc_agg@M5=0.412346"
    assert "big.bin: " in git(repo, "log", "-1", "--format=%b")


def test_second_commit_and_empty_commit(repo: Path):
    (repo / "a.txt").write_text("1")
    first = commit_feature(repo, FEATURE, 1, EVIDENCE).sha
    (repo / "a.txt").unlink()
    second = commit_feature(repo, FEATURE, 1, EVIDENCE)
    assert second.committed == ["a.txt"] and git(repo, "ls-tree", "-r", "--name-only", "HEAD") == ""
    third = commit_feature(repo, FEATURE, 1, EVIDENCE)
    assert third.committed == [] and git(repo, "rev-parse", "HEAD~2") == first


def test_detached_head_is_a_clear_error(repo: Path):
    (repo / "a.txt").write_text("1")
    commit_feature(repo, FEATURE, 1, EVIDENCE)
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(VCSError, match="HEAD is detached.*git switch"):
        commit_feature(repo, FEATURE, 1, EVIDENCE)


def test_not_a_repository(tmp_path: Path):
    with pytest.raises(VCSError, match="not a git repository"):
        commit_feature(tmp_path, FEATURE, 1, EVIDENCE)


def test_phase_tags(repo: Path):
    with pytest.raises(VCSError, match="no commits yet"):
        tag_phase_approved(repo, 1)
    (repo / "a.txt").write_text("1")
    commit_feature(repo, FEATURE, 1, EVIDENCE)
    assert tag_phase_rejected(repo, 1, "not yet") == "ralph/phase-1-rejected"
    assert tag_phase_approved(repo, 1, "approved by ana") == "ralph/phase-1-approved"
    assert git(repo, "tag", "--list").split() == ["ralph/phase-1-approved"]
    assert git(repo, "tag", "-l", "--format=%(contents)", "ralph/phase-1-approved") == "approved by ana"
