"""Confirmation on fresh seeds: a comparison with `confirm_seeds` that passes on its seeds has the seeded run checks
run again for the fresh seeds, and passes only when the same comparison passes on them alone; both are recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.plan.prd import PRDError, parse_prd
from harness.project import Project
from tests.harness.conftest import git

# Seeds 0-4 show a > b; the fresh seeds 5-9 show it again (GOOD) or show no difference (NOISE).
TREATMENT = [0.952, 0.941, 0.929, 0.930, 0.942, 0.950, 0.938, 0.931, 0.944, 0.936]
CONTROL = [0.914, 0.892, 0.900, 0.886, 0.901, 0.905, 0.897, 0.889, 0.903, 0.894]
NOISE = [0.914, 0.892, 0.900, 0.886, 0.901, 0.951, 0.936, 0.933, 0.942, 0.935]


def write(control: list[float]) -> str:
    return ("mkdir -p runs && python -c \"import json, sys; s = int(sys.argv[1]); "
            f"json.dump({{'eval.r2': {TREATMENT}[s]}}, open(f'runs/a-s{{s}}.json', 'w')); "
            f"json.dump({{'eval.r2': {control}[s]}}, open(f'runs/b-s{{s}}.json', 'w')); "
            "open('runs/ran.txt', 'a').write(f'{s} ')\" {seed}")


def comparison(**extra: Any) -> dict[str, Any]:
    return {"name": "actions help", "compare": {
        "a": {"file": "runs/a-s{seed}.json", "key": "eval.r2"}, "b": {"file": "runs/b-s{seed}.json", "key": "eval.r2"},
        "seeds": [0, 1, 2, 3, 4], "paired": True, "test": "greater", **extra}}


def confirm_repo(repo: Path, prd_dict: dict[str, Any], control: list[float], seeds: list[int] | None = None) -> Path:
    prd_dict["features"][0]["verify"] = [{"name": "runs", "run": write(control), "seeds": [0, 1, 2, 3, 4]},
                                         comparison(confirm_seeds=seeds or [5, 6, 7, 8, 9])]
    (repo / "PRD.json").write_text(json.dumps(prd_dict, indent=2))
    (repo / ".gitignore").write_text("runs/\n.ralph/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    return repo


def verify(repo: Path):
    return CliRunner().invoke(app, ["verify", "FEAT-1", "--commit", "-C", str(repo)])


def test_a_comparison_confirmed_on_fresh_seeds_passes_and_records_both(repo: Path, prd_dict) -> None:
    confirm_repo(repo, prd_dict, CONTROL)
    result = verify(repo)
    assert result.exit_code == 0, result.output
    assert (repo / "runs/ran.txt").read_text().split() == ["5", "6", "7", "8", "9"]  # the fresh seeds ran last, alone
    (ev,) = [e for e in Project.open(repo).ledger.feature("FEAT-1").last_evidence if e.kind == "compare"]
    assert ev.comparison.seeds == [0, 1, 2, 3, 4] and ev.confirmation.seeds == [5, 6, 7, 8, 9]
    assert ev.comparison.n == ev.confirmation.n == 5 and ev.confirmation.p_value < 0.05
    assert "; on fresh seeds 5, 6, 7, 8, 9: confirmed: eval.r2: a - b = +0.04" in ev.detail
    assert ev.figures["actions help.confirm.a[seed=7]"] == TREATMENT[7] and "actions help.confirm.diff" in ev.figures
    assert set(ev.sources) >= {"runs/a-s9.json", "runs/b-s0.json"}
    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Ralph-Comparison,valueonly)").splitlines()
    assert trailers[0].startswith("actions help: a - b = +0.04")
    assert trailers[1].startswith("actions help (fresh seeds 5; 6; 7; 8; 9): a - b = +0.04")


def test_a_comparison_that_fresh_seeds_do_not_confirm_fails(repo: Path, prd_dict) -> None:
    confirm_repo(repo, prd_dict, NOISE)
    assert verify(repo).exit_code == 1
    (ev,) = [e for e in Project.open(repo).ledger.feature("FEAT-1").last_evidence if e.kind == "compare"]
    assert ev.verdict == "fail" and ev.comparison.p_value < 0.05 and ev.confirmation.p_value >= 0.05
    assert "; on fresh seeds 5, 6, 7, 8, 9: not confirmed: eval.r2: a - b = " in ev.detail


def test_the_fresh_seeds_are_not_run_when_the_first_comparison_fails(repo: Path, prd_dict) -> None:
    confirm_repo(repo, prd_dict, TREATMENT)  # no difference on the first seeds (values do not vary in a - b)
    assert verify(repo).exit_code == 1
    assert (repo / "runs/ran.txt").read_text().split() == ["0", "1", "2", "3", "4"]
    (ev,) = [e for e in Project.open(repo).ledger.feature("FEAT-1").last_evidence if e.kind == "compare"]
    assert ev.confirmation is None and "fresh seeds" not in ev.detail


def test_a_failing_fresh_run_fails_the_confirmation(repo: Path, prd_dict) -> None:
    confirm_repo(repo, prd_dict, CONTROL, seeds=[5, 6, 10])  # seed 10 is out of the lists' range: the run fails
    assert verify(repo).exit_code == 1
    (ev,) = [e for e in Project.open(repo).ledger.feature("FEAT-1").last_evidence if e.kind == "compare"]
    assert ev.confirmation is None
    assert "on fresh seeds 5, 6, 10: not confirmed: run check 'runs (fresh seeds)' fail" in ev.detail


@pytest.mark.parametrize(("verify_list", "problem"), [
    ([comparison(confirm_seeds=[4, 5])], "confirm_seeds must be fresh, but [4] also is among"),
    ([comparison(confirm_seeds=[5, 5])], "confirm_seeds [5, 5] repeat a value"),
    ([{"name": "once", "run": "true"}, comparison(confirm_seeds=[5, 6])], "there is none; add the check that writes"),
    ([{"name": "runs", "run": "x {seed}", "seeds": [0], "executor": "ray"}, comparison(confirm_seeds=[5, 6])],
     "not supported with Ray checks yet"),
])
def test_confirmations_that_cannot_work_are_refused(prd_dict, verify_list: list[Any], problem: str) -> None:
    prd_dict["features"][0]["verify"] = verify_list
    with pytest.raises(PRDError, match=problem.replace("[", "\\[").replace("]", "\\]")):
        parse_prd(prd_dict)


def test_a_phase_exit_can_confirm_too(prd_dict) -> None:
    prd_dict["phases"][0]["exit"] = [comparison(confirm_seeds=[5, 6])]
    with pytest.raises(PRDError, match="'confirm_seeds' runs the list's seeded run checks again"):
        parse_prd(prd_dict)
    prd_dict["phases"][0]["exit"].insert(0, {"name": "runs", "run": write(CONTROL), "seeds": [0, 1, 2, 3, 4]})
    assert parse_prd(prd_dict).phases[0].exit[1].read_files()[-1] == "runs/b-s6.json"  # fresh files set aside too
