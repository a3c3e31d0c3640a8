"""Every `ralph` command through the CLI, including the bad-input cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.books.ledger import RepoLock
from harness.cli import app
from tests.harness.conftest import git

runner = CliRunner()


def ralph(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def write_prd(repo: Path, data) -> Path:
    path = repo / "PRD.json"
    path.write_text(json.dumps(data, indent=2) if not isinstance(data, str) else data)
    return path


def mutate(data, path: str, value) -> None:
    *parents, last = path.split("/")
    for p in parents:
        data = data[int(p)] if p.isdigit() else data[p]
    if value is KeyError:
        del data[int(last) if last.isdigit() else last]
    elif last.isdigit():
        data[int(last)] = value
    else:
        data[last] = value


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("features/0/verify/1/metric/op", "=>", "features[0].verify[1].metric.op"),
        ("features/0/verify/1/metric/file", KeyError, "features[0].verify[1].metric.file: required field is missing"),
        ("features/0/verify/1/metric/key", KeyError, "features[0].verify[1].metric.key: required field is missing"),
        ("features/1/colour", "red", "features[1].colour: unknown field"),
        ("features/1/title", KeyError, "features[1].title: required field is missing"),
        ("features/1/id", "FEAT-1", "duplicate feature id 'FEAT-1'"),
        ("features/1/phase", 9, "features[1].phase: phase 9 does not exist"),
        ("features/1/depends_on", ["FEAT-404"], "features[1].depends_on[0]: unknown feature 'FEAT-404'"),
        ("features/0/depends_on", ["FEAT-2"], "dependency cycle"),
        ("phases/1/id", 1, "duplicate phase id 1"),
    ],
)
def test_validate_reports_each_bad_input(tmp_path: Path, prd_dict, path, value, expected):
    mutate(prd_dict, path, value)
    prd = write_prd(tmp_path, prd_dict)
    before = prd.read_text()
    result = ralph("validate", prd)
    assert result.exit_code == 2
    assert expected in result.output and "Traceback" not in result.output
    assert prd.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["PRD.json"]


def test_validate_ok_and_malformed(tmp_path: Path, prd_dict):
    prd = write_prd(tmp_path, prd_dict)
    ok = ralph("validate", prd)
    assert ok.exit_code == 0 and "2 phases, 2 features" in ok.output
    write_prd(tmp_path, '{"version": 1,\n "project": "x"\n "phases": []}')
    bad = ralph("validate", prd)
    assert bad.exit_code == 2 and "malformed JSON at line 3, column 2" in bad.output
    missing = ralph("validate", tmp_path / "nope.json")
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_schema_is_json_schema(tmp_path: Path):
    result = ralph("schema")
    assert result.exit_code == 0
    assert "features" in json.loads(result.output)["properties"]
    assert ralph("schema", "--out", tmp_path / "s.json").exit_code == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"].startswith("ralph PRD.json")


def test_import(tmp_path: Path):
    src = tmp_path / "prd.json"
    src.write_text(json.dumps({"project": "App", "branchName": "ralph/x", "userStories": [
        {"id": "US-2", "title": "b", "acceptanceCriteria": ["y"], "priority": 2, "passes": False, "notes": ""},
        {"id": "US-1", "title": "a", "acceptanceCriteria": ["x"], "priority": 1, "passes": True, "notes": ""}]}))
    out = tmp_path / "PRD.json"
    result = ralph("import", src, "--out", out)
    assert result.exit_code == 0 and "no 'verify' checks" in result.output
    data = json.loads(out.read_text())
    assert [f["id"] for f in data["features"]] == ["US-1", "US-2"] and data["features"][0]["passes"] is False
    assert ralph("validate", out).exit_code == 0
    again = ralph("import", src, "--out", out)
    assert again.exit_code == 2 and "already exists" in again.output
    src.write_text('{"project": "App", "userStories": [}')
    assert ralph("import", src, "--out", tmp_path / "x.json", "--force").exit_code == 2


@pytest.mark.parametrize("template", ["blank", "seq-jepa"])
def test_init_writes_once(tmp_path: Path, template):
    repo = tmp_path / "new"
    result = ralph("init", "-C", repo, "--template", template)
    assert result.exit_code == 0, result.output
    assert (repo / ".git").is_dir() and (repo / "DESIGN-PRINCIPLES.md").exists()
    assert ralph("validate", repo / "PRD.json").exit_code == 0
    assert ".ralph/" in (repo / ".gitignore").read_text() and "| init |" in (repo / "progress.txt").read_text()
    (repo / "PRD.json").write_text("{}")
    refused = ralph("init", "-C", repo)
    assert refused.exit_code == 2 and "--force" in refused.output and (repo / "PRD.json").read_text() == "{}"
    assert ralph("init", "-C", repo, "--force", "--template", template).exit_code == 0
    assert (repo / ".gitignore").read_text().count(".ralph/") == 1
    assert (repo / "progress.txt").read_text().count("| init |") == 2


def test_verify_records_commits_and_fails(prd_repo: Path):
    assert ralph("verify", "-C", prd_repo).exit_code == 2  # nothing selected
    unknown = ralph("verify", "FEAT-11", "-C", prd_repo)
    assert unknown.exit_code == 2 and "did you mean" in unknown.output
    ok = ralph("verify", "FEAT-1", "--commit", "-C", prd_repo)
    assert ok.exit_code == 0, ok.output
    assert git(prd_repo, "log", "-1", "--format=%s") == "feat(FEAT-1): write a result"
    assert json.loads((prd_repo / "PRD.json").read_text())["features"][0]["passes"] is True
    assert "PRD.json" in git(prd_repo, "ls-tree", "--name-only", "HEAD")
    state = json.loads((prd_repo / ".ralph" / "state.json").read_text())
    assert state["features"]["FEAT-1"]["status"] == "passing"
    assert state["features"]["FEAT-1"]["verified_commit"] == git(prd_repo, "rev-parse", "HEAD")
    prd = json.loads((prd_repo / "PRD.json").read_text())
    prd["features"][0]["verify"][1]["metric"]["value"] = 0.9
    write_prd(prd_repo, prd)
    bad = ralph("verify", "FEAT-1", "-C", prd_repo)
    assert bad.exit_code == 1 and "needs >= 0.9" in bad.output
    assert json.loads((prd_repo / "PRD.json").read_text())["features"][0]["passes"] is False
    assert "| verify | FEAT-1 | phase 1" in (prd_repo / "progress.txt").read_text()


def test_verify_with_invalid_prd_writes_nothing(prd_repo: Path, prd_dict):
    prd_dict["features"][0]["phase"] = 5
    write_prd(prd_repo, prd_dict)
    result = ralph("verify", "--all", "-C", prd_repo)
    assert result.exit_code == 2 and "phase 5 does not exist" in result.output
    assert not (prd_repo / ".ralph").exists() and not (prd_repo / "progress.txt").exists()


def test_verify_refuses_while_locked(prd_repo: Path):
    with RepoLock(prd_repo, "ralph run"):
        result = ralph("verify", "--all", "-C", prd_repo)
    assert result.exit_code == 2 and "another ralph process" in result.output


def test_status_board_json_and_markdown(prd_repo: Path):
    ralph("verify", "FEAT-1", "--commit", "-C", prd_repo)
    data = json.loads(ralph("status", "--json", "-C", prd_repo).output)
    p1 = data["phases"][0]
    assert (p1["status"], p1["passing"], p1["total"]) == ("in progress", 1, 2)
    assert p1["features"][0]["metrics"] == {"eval.acc": 0.5} and data["phases"][1]["status"] == "planned"
    board = ralph("status", "-C", prd_repo)
    assert board.exit_code == 0 and "FEAT-1" in board.output and "eval.acc=0.5" in board.output
    assert ralph("status", "--write", "-C", prd_repo).exit_code == 0
    md = (prd_repo / "docs" / "STATUS.md").read_text()
    assert "## Phase 1: Baseline (in progress, 1/2)" in md and "| FEAT-1 |" in md


def test_approve_refused_then_approved_and_rejected(prd_repo: Path):
    ralph("verify", "FEAT-1", "--commit", "-C", prd_repo)
    refused = ralph("approve", "1", "--by", "ana", "-C", prd_repo)
    assert refused.exit_code == 1 and "FEAT-2 (depends on one) is pending" in refused.output
    ralph("verify", "FEAT-2", "--commit", "-C", prd_repo)
    approved = ralph("approve", "1", "--by", "ana", "--note", "looks right", "-C", prd_repo)
    assert approved.exit_code == 0, approved.output
    assert git(prd_repo, "tag", "--list") == "ralph/phase-1-approved"
    state = json.loads((prd_repo / ".ralph" / "state.json").read_text())
    decision = state["phases"]["1"]["decisions"][-1]
    assert (decision["decision"], decision["by"], decision["note"]) == ("approved", "ana", "looks right")
    assert decision["commit"] == git(prd_repo, "rev-parse", "HEAD")
    assert state["phases"]["1"]["exit_evidence"][0]["verdict"] == "pass"  # exit checks ran for the approval
    rejected = ralph("reject", "1", "--reason", "figures too noisy", "--by", "bo", "-C", prd_repo)
    assert rejected.exit_code == 0
    assert git(prd_repo, "tag", "--list") == "ralph/phase-1-rejected"
    log = ralph("log", "--tail", "2", "-C", prd_repo).output
    assert "approved | phase 1" in log and "reason: figures too noisy" in log
    assert json.loads(ralph("status", "--json", "-C", prd_repo).output)["phases"][0]["status"] == "rejected"
    assert ralph("approve", "7", "--by", "ana", "-C", prd_repo).exit_code == 2


def test_approve_refuses_failing_exit_check(prd_repo: Path, prd_dict):
    prd_dict["phases"][0]["exit"] = [{"name": "lab tests", "run": "echo 2 failed; exit 1"}]
    write_prd(prd_repo, prd_dict)
    for fid in ("FEAT-1", "FEAT-2"):
        ralph("verify", fid, "--commit", "-C", prd_repo)
    refused = ralph("approve", "1", "--by", "ana", "-C", prd_repo)
    assert refused.exit_code == 1 and "exit check 'lab tests': fail, exit 1" in refused.output
    assert git(prd_repo, "tag", "--list") == ""


def test_log_tamper_refusal_and_accept(prd_repo: Path):
    ralph("verify", "FEAT-2", "-C", prd_repo)
    progress = prd_repo / "progress.txt"
    progress.write_text(progress.read_text().replace("status: passing", "status: failing"))
    warned = ralph("log", "-C", prd_repo)
    assert warned.exit_code == 0 and "earlier text in progress.txt was edited" in warned.output
    refused = ralph("verify", "FEAT-2", "-C", prd_repo)
    assert refused.exit_code == 2 and "--accept-edits" in refused.output
    assert ralph("log", "--accept-edits", "--by", "ana", "-C", prd_repo).exit_code == 0
    assert ralph("verify", "FEAT-2", "-C", prd_repo).exit_code == 0
    tail = ralph("log", "-n", "2", "-C", prd_repo).output
    assert "accept-edits | progress.txt" in tail and "by: ana" in tail


def test_verify_phase_runs_exit_checks_and_detached_head_is_refused_first(prd_repo: Path):
    result = ralph("verify", "--phase", "1", "-C", prd_repo)
    assert result.exit_code == 0 and "exit ok" in result.output
    state = json.loads((prd_repo / ".ralph" / "state.json").read_text())
    assert [e["check"] for e in state["phases"]["1"]["exit_evidence"]] == ["exit ok"]
    ralph("verify", "FEAT-1", "--commit", "-C", prd_repo)
    git(prd_repo, "checkout", "-q", "--detach")
    entries = (prd_repo / "progress.txt").read_text().count("## ")
    detached = ralph("verify", "FEAT-2", "--commit", "-C", prd_repo)
    assert detached.exit_code == 2 and "HEAD is detached" in detached.output
    assert (prd_repo / "progress.txt").read_text().count("## ") == entries


def test_feature_without_checks_never_passes(prd_repo: Path, prd_dict):
    prd_dict["features"][1]["verify"] = []
    write_prd(prd_repo, prd_dict)
    result = ralph("verify", "FEAT-2", "-C", prd_repo)
    assert result.exit_code == 1 and "no checks" in result.output


def test_approval_request_shows_on_the_board_and_clears_on_decision(prd_repo: Path):
    from harness.books.requests import request_path, write_request
    from harness.plan.prd import load_prd

    for fid in ("FEAT-1", "FEAT-2"):
        ralph("verify", fid, "--commit", "-C", prd_repo)
    ralph("verify", "--phase", "1", "-C", prd_repo)
    path = write_request(prd_repo, load_prd(prd_repo / "PRD.json").phase(1), "both features pass")
    assert path == request_path(prd_repo, 1)
    body = json.loads(path.read_text())
    assert body["summary"] == "both features pass" and body["commit"] == git(prd_repo, "rev-parse", "HEAD")
    phase = json.loads(ralph("status", "--json", "-C", prd_repo).output)["phases"][0]
    assert phase["status"] == "awaiting approval" and phase["approval_requested"]
    assert ralph("approve", "1", "--by", "ana", "-C", prd_repo).exit_code == 0
    assert not path.exists()


def test_ctrl_c_outside_the_loop_is_an_interruption_not_a_crash(prd_repo: Path, monkeypatch):
    """A Ctrl-C (or SIGTERM, which ralph turns into one) that lands before the loop takes over, e.g.
    while the lock is taken: exit 130 with the resume hint, no traceback."""
    git(prd_repo, "add", "-A")
    git(prd_repo, "commit", "-qm", "plan")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.cli.run_locked", interrupted)
    result = ralph("run", "-C", str(prd_repo), "--phase", "1", "--no-input")
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "resumes" in result.output
