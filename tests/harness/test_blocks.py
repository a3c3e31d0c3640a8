"""Blocks that lift (issue 24): a dependency block lifts once the dependency passes, any block lifts
once the feature's checks change in PRD.json, the rest with a recorded `ralph unblock ID`; and a block's
reason names the failing check and its figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from harness.agents import make_agent
from harness.books.ledger import Ledger
from harness.books.progress import ProgressLog
from harness.cli import app
from harness.errors import ExitCode
from tests.harness.conftest import git
from tests.harness.test_loop import _replay, plan_repo, runner_for, score_script  # noqa: F401 (fixture)

GATE_REASON = "gate 'score gate' score = 0.2, needs >= 0.5"


def progress_blocks(repo: Path, kind: str) -> list[str]:
    return [b for b in ProgressLog(repo).blocks() if f" | {kind} | " in b.splitlines()[0]]


def test_dependency_block_lifts_once_the_dependency_passes(plan_repo: Path) -> None:
    ledger = Ledger(plan_repo)
    ledger.mark_blocked("FEAT-A", "something a person must look at")
    ledger.mark_blocked("FEAT-B", "depends on FEAT-A, which is not passing")  # as an older ralph recorded it
    script = _replay(plan_repo, {"FEAT-A": [[{"write": "a.txt", "content": "a"}]],
                                 "FEAT-B": [[{"write": "score.py", "content": score_script(0.9)}]]})
    first = runner_for(plan_repo, make_agent("replay", script=script))
    first.only = first.project.prd.feature("FEAT-A")  # `ralph run --feature FEAT-A`
    assert first.run().code == ExitCode.OK
    outcome = runner_for(plan_repo, make_agent("replay", script=script)).run()  # then plain `ralph run`
    assert "FEAT-B" not in outcome.blocked, outcome.blocked
    assert Ledger(plan_repo).feature("FEAT-B").status == "passing"
    lifted = progress_blocks(plan_repo, "unblocked")
    assert any("FEAT-B" in b and "why: FEAT-A now passes" in b for b in lifted), lifted


def test_dependency_block_in_the_same_run_records_what_it_waits_for(plan_repo: Path) -> None:
    script = _replay(plan_repo, {"FEAT-A": [[{"say": "nothing"}], [{"say": "nothing"}]]})
    runner_for(plan_repo, make_agent("replay", script=script), max_attempts=2).run()
    b = Ledger(plan_repo).feature("FEAT-B")
    assert b.status == "blocked" and b.blocked_by == ["FEAT-A"]


def test_unreachable_gate_names_check_and_figure_and_loosening_reopens(plan_repo: Path) -> None:
    script = _replay(plan_repo, {"FEAT-A": [[{"write": "a.txt", "content": "a"}]],
                                 "FEAT-B": [[{"write": "score.py", "content": score_script(0.2)}],
                                            [{"write": "notes.txt", "content": "tried"}]]})
    outcome = runner_for(plan_repo, make_agent("replay", script=script)).run()
    assert outcome.code == ExitCode.BLOCKED
    assert outcome.blocked["FEAT-B"].startswith(GATE_REASON), outcome.blocked
    assert any(GATE_REASON in b for b in progress_blocks(plan_repo, "blocked"))
    board = json.loads(CliRunner().invoke(app, ["status", "--json", "-C", str(plan_repo)]).output)
    row = next(f for p in board["phases"] for f in p["features"] if f["id"] == "FEAT-B")
    assert GATE_REASON in row["blocked_reason"]
    report = CliRunner().invoke(app, ["report", "-C", str(plan_repo), "--out", str(plan_repo.parent / "r.html")])
    assert report.exit_code == 0, report.output
    assert "needs &gt;= 0.5" in (plan_repo.parent / "r.html").read_text()

    plan: dict[str, Any] = json.loads((plan_repo / "PRD.json").read_text())
    plan["features"][1]["verify"][1]["metric"]["value"] = 0.1  # the researcher loosens the gate
    (plan_repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    git(plan_repo, "commit", "-qam", "loosen the gate")
    assert Ledger(plan_repo, plan=None).feature("FEAT-B").status == "blocked"
    runner = runner_for(plan_repo, make_agent("replay", script=script))
    assert runner.project.ledger.feature("FEAT-B").status != "blocked"  # reopened as soon as the plan is read
    outcome = runner.run()
    assert "FEAT-B" not in outcome.blocked and Ledger(plan_repo).feature("FEAT-B").status == "passing"
    assert any("its checks changed in PRD.json" in b for b in progress_blocks(plan_repo, "unblocked"))


def test_max_attempts_block_names_the_gate(plan_repo: Path) -> None:
    script = _replay(plan_repo, {"FEAT-A": [[{"write": "a.txt", "content": "a"}]],
                                 "FEAT-B": [[{"write": "score.py", "content": score_script(0.2)}]]})
    outcome = runner_for(plan_repo, make_agent("replay", script=script), max_attempts=1).run()
    assert outcome.blocked["FEAT-B"] == f"{GATE_REASON} (1 attempts failed, max_attempts 1)"


def test_other_blocks_stay_until_ralph_unblock(plan_repo: Path) -> None:
    Ledger(plan_repo).mark_blocked("FEAT-A", "tampering: PRD.json")
    script = _replay(plan_repo, {"FEAT-A": [[{"write": "a.txt", "content": "a"}]]})
    runner = runner_for(plan_repo, make_agent("replay", script=script))
    said: list[str] = []
    runner.view.say = lambda text, style="": said.append(text)  # type: ignore[method-assign]
    assert runner.run().code == ExitCode.BLOCKED
    assert any("`ralph unblock FEAT-A`" in s for s in said), said
    refused = CliRunner().invoke(app, ["unblock", "FEAT-C", "-C", str(plan_repo)])
    assert refused.exit_code != 0 and "FEAT-C is pending, not blocked" in refused.output
    done = CliRunner().invoke(app, ["unblock", "FEAT-A", "--by", "Ada", "--note", "checked it", "-C", str(plan_repo)])
    assert done.exit_code == 0, done.output
    state = Ledger(plan_repo).feature("FEAT-A")
    assert state.status == "failing" and state.attempts == 0 and state.blocked_reason is None
    entry = progress_blocks(plan_repo, "unblocked")[-1]
    assert "by: Ada" in entry and "was blocked: tampering: PRD.json" in entry and "note: checked it" in entry
    ProgressLog(plan_repo).audit()
    runner = runner_for(plan_repo, make_agent("replay", script=script))
    runner.only = runner.project.prd.feature("FEAT-A")
    assert runner.run().code == ExitCode.OK
