"""The judge's records against a hostile agent or a careless user (issue 8, records side).

Each test is an attack that used to work: evidence outliving a change to its checks, non-finite
metrics, a deleted progress record, a deleted lock file, an output flood, protected directory
patterns that protected nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.agents.base import Task
from harness.agents.transcript import FIELD_MAX, Transcript
from harness.books.ledger import Ledger
from harness.books.progress import Chain, LogEntry, ProgressLog
from harness.cli import app
from harness.errors import ExitCode
from harness.sandbox.proc import LINE_MAX, LOG_MAX, LOG_TAIL, run_in_group
from tests.harness.conftest import git

REPO_ROOT = Path(__file__).resolve().parents[2]

PLAN: dict[str, Any] = {
    "version": 1,
    "project": "judge-records",
    "defaults": {"max_attempts": 2, "attempt_timeout_s": 60, "check_timeout_s": 30},
    "phases": [{"id": 1, "name": "Build", "exit": [{"name": "exit ok", "run": "true"}], "approval": True}],
    "features": [
        {"id": "F-1", "phase": 1, "title": "score well",
         "verify": [{"name": "score", "run": "python score.py"},
                    {"name": "gate", "metric": {"file": "score.json", "key": "score", "op": ">=", "value": 0.5}}]},
    ],
}


def ralph(*args: Any):
    return CliRunner().invoke(app, [str(a) for a in args])


def score_script(value: str) -> str:
    return f"import json\njson.dump({{'score': {value}}}, open('score.json', 'w'))\n"


def write_plan(repo: Path, plan: dict[str, Any]) -> None:
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))


@pytest.fixture
def judged(repo: Path) -> Path:
    """A committed repository whose F-1 passes with score 0.6 (score.py is the code under judgement)."""
    write_plan(repo, PLAN)
    (repo / "score.py").write_text(score_script("0.6"))
    (repo / ".gitignore").write_text(".ralph/\nscore.json\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    return repo


def tighten_gate(repo: Path, value: float) -> None:
    plan = json.loads((repo / "PRD.json").read_text())
    plan["features"][0]["verify"][1]["metric"]["value"] = value
    write_plan(repo, plan)
    git(repo, "commit", "-qam", "tighten the gate")


# ---------------------------------------------------------------- evidence bound to its checks


def test_gate_tightened_after_a_pass_makes_the_feature_pending_and_refuses_approval(judged: Path) -> None:
    assert ralph("verify", "F-1", "-C", judged).exit_code == 0
    tighten_gate(judged, 0.9)  # the old 0.6 never met this gate

    board = json.loads(ralph("status", "--json", "-C", judged).output)
    row = board["phases"][0]["features"][0]
    assert row["status"] == "pending" and "checks changed since it passed" in row["stale_reason"]

    refused = ralph("approve", "1", "--by", "ana", "-C", judged)
    assert refused.exit_code == ExitCode.FAILED and "checks changed since it passed" in refused.output
    assert "ralph/phase-1-approved" not in git(judged, "tag")

    preview = ralph("run", "--phase", "1", "--dry-run", "-C", judged).output
    assert "F-1: pending, next attempt 1/2" in preview and "passing, skipped" not in preview

    again = ralph("verify", "F-1", "-C", judged)  # re-running the new checks: 0.6 < 0.9
    assert again.exit_code == ExitCode.FAILED and "needs >= 0.9" in again.output
    assert Ledger(judged).feature("F-1").status == "failing"


def agent_script(tmp_path: Path, body: str) -> str:
    """An agent command running `body` (Python) in the repository; the script lives outside it."""
    path = tmp_path / "agent.py"
    path.write_text(textwrap.dedent(body))
    return f"{sys.executable} {path}"


def test_ralph_run_works_on_a_feature_whose_checks_changed(judged: Path, tmp_path: Path) -> None:
    assert ralph("verify", "F-1", "-C", judged).exit_code == 0
    tighten_gate(judged, 0.9)
    agent = agent_script(tmp_path, f"open('score.py', 'w').write({score_script('0.95')!r})")
    result = ralph("run", "--phase", "1", "--feature", "F-1", "--agent", "command", "--agent-cmd", agent,
                   "--no-input", "--sandbox", "none", "-C", judged)  # the agent script is under the host's /tmp
    assert result.exit_code == 0, result.output
    state = Ledger(judged).feature("F-1")
    assert state.status == "passing" and state.attempts == 1 and state.stale_reason is None
    assert "feat(F-1)" in git(judged, "log", "-1", "--format=%s")


def test_unchanged_checks_keep_their_verdict_and_exit_evidence_is_bound_too(judged: Path) -> None:
    assert ralph("verify", "--phase", "1", "-C", judged).exit_code == 0
    assert Ledger(judged).feature("F-1").checks_sha256
    plan = json.loads((judged / "PRD.json").read_text())
    plan["features"][0]["title"] = "score well (renamed)"  # not a check: the verdict stands
    plan["phases"][0]["exit"][0]["run"] = "false"  # the exit check now fails: old evidence must not count
    write_plan(judged, plan)
    git(judged, "commit", "-qam", "edit")
    board = json.loads(ralph("status", "--json", "-C", judged).output)
    assert board["phases"][0]["features"][0]["status"] == "passing"
    assert board["phases"][0]["exit"][0]["verdict"] == "not run"
    refused = ralph("approve", "1", "--by", "ana", "-C", judged)
    assert refused.exit_code == ExitCode.FAILED and "exit check 'exit ok': fail" in refused.output


@pytest.mark.parametrize("value", ["float('inf')", "float('nan')", "-float('inf')"])
def test_non_finite_metric_fails_the_gate_and_the_ledger_reloads(judged: Path, value: str) -> None:
    (judged / "score.py").write_text(score_script(value))
    plan = json.loads((judged / "PRD.json").read_text())
    plan["features"][0]["verify"][1]["metric"]["op"] = "<=" if value.startswith("-") else ">="
    write_plan(judged, plan)
    result = ralph("verify", "F-1", "-C", judged)
    assert result.exit_code == ExitCode.FAILED and "not a finite number" in result.output
    assert ralph("status", "-C", judged).exit_code == 0
    assert Ledger(judged).feature("F-1").status == "failing"


def test_state_written_by_an_older_ralph_with_a_null_figure_loads_and_is_not_passing(judged: Path) -> None:
    """Older ralph saved `inf` as null; every later command then exited 2."""
    evidence = {"check": "gate", "kind": "metric", "verdict": "pass", "detail": "score = inf >= 0.5",
                "figures": {"score": None}, "duration_s": 0.0, "sources": {"score.json": "0" * 64}}
    state = {"version": 1, "features": {"F-1": {"status": "passing", "last_evidence": [evidence]}}}
    (judged / ".ralph").mkdir()
    (judged / ".ralph" / "state.json").write_text(json.dumps(state))
    result = ralph("status", "--json", "-C", judged)
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["phases"][0]["features"][0]
    assert row["status"] == "pending"  # the evidence no longer matches F-1's two checks
    fs = Ledger(judged).feature("F-1")
    assert fs.last_evidence[0].verdict == "error" and "not a finite number" in fs.last_evidence[0].detail


def legacy_state(command: str, threshold: float) -> dict[str, Any]:
    """F-1 passing as an older ralph recorded it: no check hashes."""
    run = {"check": "score", "kind": "run", "verdict": "pass", "detail": "exit 0", "duration_s": 0.1,
           "command": command, "exit_code": 0}
    gate = {"check": "gate", "kind": "metric", "verdict": "pass", "detail": f"score = 0.6 >= {threshold:g}",
            "figures": {"score": 0.6}, "duration_s": 0.0, "sources": {"score.json": "0" * 64}}
    return {"version": 1, "features": {"F-1": {"status": "passing", "last_evidence": [run, gate],
                                                "verified_commit": "abc1234"}}}


@pytest.mark.parametrize(("command", "threshold", "status"), [
    ("python score.py", 0.5, "passing"),  # still the same checks: kept, flagged as legacy
    ("python score.py", 0.4, "pending"),  # the gate was tightened since
    ("python old.py", 0.5, "pending"),  # the command changed since
])
def test_legacy_evidence_is_matched_to_the_plan_and_never_approved_unbound(
    judged: Path, command: str, threshold: float, status: str
) -> None:
    (judged / ".ralph").mkdir()
    (judged / ".ralph" / "state.json").write_text(json.dumps(legacy_state(command, threshold)))
    board = ralph("status", "--json", "-C", judged)
    row = json.loads(board.output)["phases"][0]["features"][0]
    assert (row["status"], row["legacy"]) == (status, status == "passing")
    assert "(legacy)" in ralph("status", "-C", judged).output or status != "passing"
    refused = ralph("approve", "1", "--by", "ana", "-C", judged)
    assert refused.exit_code == ExitCode.FAILED
    assert ("ralph verify F-1" in refused.output) and "Traceback" not in refused.output


def test_this_repositorys_own_records_still_load() -> None:
    """The repository commits its own .ralph/state.json and progress.txt (written by older ralph)."""
    result = ralph("status", "--json", "-C", REPO_ROOT)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["features"] > 0


# ---------------------------------------------------------------- records inside the agent's reach


def test_deleting_the_progress_record_does_not_launder_an_edit(judged: Path) -> None:
    assert ralph("verify", "F-1", "-C", judged).exit_code == 0
    (judged / ".ralph" / "progress.json").unlink()
    log = judged / "progress.txt"
    forged = log.read_text().replace("status: passing", "status: passing (reviewed by the PI)")
    log.write_text(forged)
    result = ralph("verify", "F-1", "-C", judged)
    assert result.exit_code != 0 and "record of progress.txt" in result.output
    assert log.read_text() == forged  # nothing appended to the forged text
    accepted = ralph("log", "--accept-edits", "--by", "ana", "-C", judged)
    assert accepted.exit_code == 0 and "record of progress.txt" in accepted.output
    assert ralph("verify", "F-1", "-C", judged).exit_code == 0


def test_a_fresh_clone_adopts_the_committed_progress_log(judged: Path, tmp_path: Path) -> None:
    assert ralph("verify", "F-1", "-C", judged).exit_code == 0
    git(judged, "add", "progress.txt")
    git(judged, "commit", "-qm", "records")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(judged), str(clone))
    assert ProgressLog(clone).problem() is None  # .ralph/ is never committed: no record, same text as HEAD
    assert ralph("verify", "F-1", "-C", clone).exit_code == 0
    (clone / "progress.txt").write_text((clone / "progress.txt").read_text() + "## forged | approved | phase 1\n")
    assert "was edited" in ProgressLog(clone).problem() or "added after" in ProgressLog(clone).problem()


HOLD = textwrap.dedent("""
    import sys, time
    from harness.books.ledger import RepoLock
    with RepoLock(sys.argv[1], "ralph run"):
        print("held", flush=True)
        time.sleep(60)
""")
TRY = textwrap.dedent("""
    import sys
    from harness.books.ledger import RepoLock, RepoLockedError
    try:
        with RepoLock(sys.argv[1], "ralph verify"):
            print("got the lock")
    except RepoLockedError as e:
        print("refused:", e)
""")


def test_deleting_the_lock_file_does_not_let_a_second_writer_in(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=REPO_ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        (tmp_path / ".ralph" / "lock").unlink()  # the agent's move
        (tmp_path / ".ralph" / "lock").write_text("{}")
        second = subprocess.run([sys.executable, "-c", TRY, str(tmp_path)], capture_output=True, text=True,
                                cwd=REPO_ROOT, timeout=60)
        assert second.stdout.startswith("refused:"), second.stdout + second.stderr
    finally:
        holder.kill()
        holder.wait()
    after = subprocess.run([sys.executable, "-c", TRY, str(tmp_path)], capture_output=True, text=True,
                           cwd=REPO_ROOT, timeout=60)
    assert after.stdout.strip() == "got the lock"  # a dead holder frees it


# ---------------------------------------------------------------- floods

MEASURE = textwrap.dedent("""
    import resource, subprocess, sys
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
""")


def test_an_80_mb_line_of_agent_output_keeps_ralph_bounded(judged: Path, tmp_path: Path) -> None:
    """One line larger than the transcript cap: memory stays flat, the log keeps head and tail."""
    tighten_gate(judged, 0.9)  # so there is an attempt: the agent must raise the score
    fix = agent_script(tmp_path, f"open('score.py', 'w').write({score_script('0.95')!r})")
    flood = f"head -c 80000000 /dev/zero | tr '\\0' x; echo; echo THE-END; {fix}"
    argv = [str(Path(sys.executable).parent / "ralph"), "run", "--phase", "1", "--feature", "F-1", "--agent", "command",
            "--agent-cmd", flood, "--no-input", "--sandbox", "none", "-C", str(judged)]  # the fix is under /tmp
    out = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=240)
    code, peak_mb = map(int, out.stdout.split())
    assert code == 0 and peak_mb < 300, (code, peak_mb)
    assert Ledger(judged).feature("F-1").status == "passing"
    transcript = next((judged / ".ralph" / "runs").glob("*-F-1-1/transcript.jsonl"))
    assert transcript.stat().st_size <= LOG_MAX + 1024
    with open(transcript, "rb") as f:
        f.seek(-200, os.SEEK_END)
        end = f.read()
    assert b"THE-END" in end
    with open(transcript, "rb") as f:
        f.seek(LOG_MAX - LOG_TAIL - 100)
        assert b"bytes cut" in f.read(400)


def test_lines_handed_to_callbacks_are_capped(tmp_path: Path) -> None:
    lines: list[str] = []
    res = run_in_group("head -c 3000000 /dev/zero | tr '\\0' y; echo; echo short", tmp_path, timeout_s=30,
                       on_line=lines.append, tail_bytes=100)
    assert res.ok and lines[-1] == "short" and len(res.output_tail) <= 100
    assert len(lines[0]) < LINE_MAX + 40 and lines[0].endswith(f"{3_000_000 - LINE_MAX} bytes cut")


def test_transcript_records_are_capped(tmp_path: Path) -> None:
    task = Task(feature_id="F", attempt=1, system="", prompt="", workdir=tmp_path,
                transcript_path=tmp_path / "t.jsonl")
    log = Transcript(task)
    log.write("tool_result", output="z" * 5_000_000, nested={"more": ["w" * 5_000_000]})
    size = log.path.stat().st_size
    record = json.loads(log.path.read_text())
    assert size < 3 * FIELD_MAX and record["output"].endswith("characters cut")


# ---------------------------------------------------------------- scale (behaviour; figures in `make bench`)


def test_append_and_tail_do_not_read_the_whole_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = ProgressLog(tmp_path)
    for i in range(300):
        log.append(LogEntry(kind="verify", subject=f"F-{i}", summary="x" * 1000))
    assert log.path.stat().st_size > 3 * (1 << 16)  # several pieces of the chain

    def no_full_reads(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("read the whole log")

    monkeypatch.setattr(ProgressLog, "_scan", no_full_reads)
    monkeypatch.setattr(Path, "read_bytes", no_full_reads)
    log.append(LogEntry(kind="verify", subject="F-last"))
    assert "F-last" in log.tail(1) and "F-298" in log.tail(3)
    monkeypatch.undo()
    assert log.problem() is None and log._scan().digest == Chain().extended(log.path.read_bytes()).digest


# ---------------------------------------------------------------- protected patterns


@pytest.mark.parametrize("pattern", ["tests/", "tests", "./tests", "tests/**"])
def test_a_directory_pattern_protects_everything_below_it(judged: Path, pattern: str) -> None:
    plan = json.loads((judged / "PRD.json").read_text())
    plan["defaults"]["protected"] = [pattern]
    write_plan(judged, plan)
    (judged / "tests" / "unit").mkdir(parents=True)
    (judged / "tests" / "unit" / "test_score.py").write_text("def test_score():\n    assert False\n")
    git(judged, "add", "-A")
    git(judged, "commit", "-qm", "tests")
    agent = ("sh -c 'echo \"def test_score(): pass\" > tests/unit/test_score.py; "
             "echo planted > tests/conftest.py'")
    result = ralph("run", "--phase", "1", "--feature", "F-1", "--agent", "command", "--agent-cmd", agent,
                   "--max-attempts", "1", "--no-input", "--sandbox", "none", "-C", judged)  # the guard, not the mount
    assert result.exit_code == ExitCode.BLOCKED, result.output
    assert "assert False" in (judged / "tests" / "unit" / "test_score.py").read_text()
    assert not (judged / "tests" / "conftest.py").exists()
    assert "verdict: tampering" in (judged / "progress.txt").read_text()


def test_validate_warns_about_a_protected_pattern_that_matches_nothing(judged: Path) -> None:
    plan = json.loads((judged / "PRD.json").read_text())
    plan["defaults"]["protected"] = ["score.py", "tset/"]
    write_plan(judged, plan)
    result = ralph("validate", "-C", judged)
    assert result.exit_code == 0
    assert "'tset/' matches nothing" in result.output and "'score.py' matches" not in result.output
