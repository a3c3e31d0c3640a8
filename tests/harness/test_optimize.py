"""Optimize: the plan's `optimize` block, the keep rule, and a whole search with a scripted agent (`ralph run
--agent command`), its leaderboard, refs, tag and confirmation."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ExitCode
from harness.optimize.board import load_board
from harness.optimize.keep import decide
from harness.plan.prd import PRDError, json_schema, parse_prd
from harness.project import Project
from tests.harness.conftest import git
from tests.harness.optimize_fixture import SLOW_TRAIN, lr_agent, optimize_plan, optimize_repo

HOLDOUT = {"paths": ["holdout"], "run": "python eval_holdout.py {seed}",
           "metric": {"file": "out/h-s{seed}.json", "key": "score"}}


def ralph(repo: Path, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "-C", str(repo)])


def search(repo: Path, cmd: str, *args: str) -> Any:
    # the agent's script lives under the host's /tmp, which a sandbox hides: unsandboxed unless a test says otherwise
    sandbox = [] if "--sandbox" in args else ["--sandbox", "none"]
    return ralph(repo, "run", "--agent", "command", "--agent-cmd", cmd, "--no-input", *args, *sandbox)


# ------------------------------------------------------------------ the plan


def with_opt(**changes: Any) -> dict[str, Any]:
    plan = optimize_plan()
    plan["features"][0]["optimize"].update(changes)
    return plan


@pytest.mark.parametrize(("changes", "message"), [
    ({"confirm_seeds": [4, 10]}, "confirm_seeds must be fresh"),
    ({"seeds": [0, 0, 1]}, "repeat a value"),
    ({"metric": {"file": "runs/opt.json", "key": "score"}}, "{seed} placeholder"),
    ({"direction": "up"}, "optimize.direction"),
    ({"budget": {"attempts": 0, "hours": 1}}, "optimize.budget.attempts"),
    ({"seeds": [0]}, "optimize.seeds"),
    ({"holdout": {**HOLDOUT, "paths": ["../elsewhere"]}}, "inside the repository"),
])
def test_an_optimize_block_that_cannot_work_is_refused_with_its_path(changes: dict, message: str) -> None:
    with pytest.raises(PRDError) as err:
        parse_prd(with_opt(**changes))
    assert message in str(err.value) and "features[0]" in str(err.value)


def test_an_optimize_feature_needs_a_seeded_run_check_and_no_comparison() -> None:
    plan = optimize_plan()
    plan["features"][0]["verify"] = [{"name": "tests", "run": "true"}]
    with pytest.raises(PRDError, match="needs a seeded run check"):
        parse_prd(plan)
    plan = optimize_plan()
    plan["features"][0]["verify"].append({"name": "vs", "compare": {
        "a": {"file": "a{seed}.json", "key": "k"}, "b": {"file": "b{seed}.json", "key": "k"}, "seeds": [0, 1],
        "paired": True, "test": "greater"}})
    with pytest.raises(PRDError, match="keep rule is the comparison"):
        parse_prd(plan)


def test_the_schema_documents_the_optimize_fields() -> None:
    fields = json.dumps(json_schema())
    for name in ("confirm_seeds", "stop_after_discards", "acknowledge_unenforced", "trial_hours", '"fixed"'):
        assert name in fields


def test_validate_refuses_a_holdout_under_sandbox_none_unless_acknowledged(repo: Path) -> None:
    optimize_repo(repo, with_opt(holdout=HOLDOUT))
    refused = ralph(repo, "validate", "--sandbox", "none")
    assert refused.exit_code == ExitCode.USAGE, refused.output
    assert "acknowledge_unenforced" in refused.output and "features[0].optimize.holdout" in refused.output
    assert ralph(repo, "validate", "--sandbox", "bwrap").exit_code == 0
    (repo / "PRD.json").write_text(json.dumps(with_opt(holdout={**HOLDOUT, "acknowledge_unenforced": True})))
    assert ralph(repo, "validate", "--sandbox", "none").exit_code == 0


def test_run_refuses_an_unacknowledged_holdout_without_a_sandbox(repo: Path, tmp_path: Path) -> None:
    optimize_repo(repo, with_opt(holdout=HOLDOUT))
    result = search(repo, lr_agent(tmp_path, [0.3]), "--sandbox", "none")
    assert result.exit_code != 0 and "acknowledge_unenforced" in result.output
    assert load_board(repo, "OPT-1") is None  # nothing ran


# ------------------------------------------------------------------ the keep rule


def test_the_keep_rule_rejects_a_noise_level_gain_that_the_mean_went_up_would_keep() -> None:
    incumbent = {0: 0.912, 1: 0.897, 2: 0.921, 3: 0.905, 4: 0.899}
    candidate = {0: 0.926, 1: 0.889, 2: 0.915, 3: 0.921, 4: 0.904}  # mean +0.0042, seed-to-seed noise ~0.01
    assert sum(candidate.values()) > sum(incumbent.values())  # "the mean went up": autoresearch keeps it
    decision = decide(candidate, incumbent, direction="max", alpha=0.05)
    assert not decision.keep and decision.p_value is not None and decision.p_value > 0.05
    assert decision.diff == pytest.approx(0.0042, abs=1e-4)


def test_the_keep_rule_keeps_a_real_gain_and_reads_min_the_other_way() -> None:
    incumbent = {0: 0.912, 1: 0.897, 2: 0.921, 3: 0.905, 4: 0.899}
    candidate = {s: v + 0.03 + 0.004 * (-1) ** s for s, v in incumbent.items()}
    kept = decide(candidate, incumbent, direction="max", alpha=0.05)
    assert kept.keep and kept.p_value < 0.01 and kept.stats is not None and kept.stats.seeds == [0, 1, 2, 3, 4]
    assert not decide(candidate, incumbent, direction="min", alpha=0.05).keep  # lower is better: it is worse
    assert decide(incumbent, candidate, direction="min", alpha=0.05).keep


def test_on_pure_noise_the_keep_rule_keeps_about_alpha_while_the_mean_rule_keeps_half() -> None:
    rng = random.Random(7)
    kept_by_mean = kept_by_rule = 0
    trials = 400
    for _ in range(trials):
        base = [rng.gauss(0.9, 0.02) for _ in range(5)]  # the seed's share of the noise, common to both
        inc = {s: b + rng.gauss(0, 0.01) for s, b in enumerate(base)}
        cand = {s: b + rng.gauss(0, 0.01) for s, b in enumerate(base)}
        kept_by_mean += sum(cand.values()) > sum(inc.values())
        kept_by_rule += decide(cand, inc, direction="max", alpha=0.05).keep
    assert kept_by_mean / trials > 0.4
    assert kept_by_rule / trials < 0.08


def test_values_that_do_not_vary_are_not_kept() -> None:
    same = {0: 0.5, 1: 0.5, 2: 0.5}
    decision = decide({s: v + 0.1 for s, v in same.items()}, same, direction="max", alpha=0.05)
    assert not decision.keep and "nothing to test" in decision.reason


# ------------------------------------------------------------------ a whole search


@pytest.fixture
def searched(repo: Path, tmp_path: Path) -> tuple[Path, Any]:
    """A search of three trials: lr 0.05 (worse: discard), 0.3 (the optimum: keep), 0.31 (noise-level: discard)."""
    optimize_repo(repo, with_opt(holdout={**HOLDOUT, "acknowledge_unenforced": True}))
    result = search(repo, lr_agent(tmp_path, [0.05, 0.3, 0.31]))
    return repo, result


def test_a_search_keeps_what_beats_the_incumbent_and_confirms_it_on_fresh_seeds(searched: tuple[Path, Any]) -> None:
    repo, result = searched
    assert result.exit_code == ExitCode.OK, result.output
    board = load_board(repo, "OPT-1")
    assert board is not None and board.ending is not None and board.ending.confirmed
    assert [(t.kind, t.n, t.verdict) for t in board.trials] == [
        ("baseline", 0, "keep"), ("candidate", 1, "discard"), ("candidate", 2, "keep"), ("candidate", 3, "discard"),
        ("confirmation", 4, "keep")]
    base, worse, best, noise, confirm = board.trials
    assert worse.incumbent == 0 and best.incumbent == 0 and noise.incumbent == 2
    assert best.p_value < 0.05 and noise.p_value > 0.05 and worse.diff < 0
    assert confirm.seeds == [10, 11, 12, 13, 14] and sorted(confirm.versus) == [10, 11, 12, 13, 14]
    assert best.hypothesis == "lr 0.3 should score higher"
    # the kept trial is a commit; the discarded ones are refs and patches; the winner is tagged
    assert git(repo, "rev-parse", "ralph/OPT-1/best") == best.commit
    assert git(repo, "log", "-1", "--format=%s", best.commit) == "optimize(OPT-1): trial 2 kept: lr 0.3 should score higher"
    assert json.loads(git(repo, "show", f"{worse.ref}:config.json")) == {"lr": 0.05}
    assert worse.ref == "refs/ralph/discarded/OPT-1/1" and (repo / str(worse.patch)).read_text().count('"lr": 0.05')
    assert json.loads((repo / "config.json").read_text()) == {"lr": 0.3}  # the tree is the incumbent's
    assert not (repo / "hypothesis.txt").exists()
    assert json.loads((repo / "PRD.json").read_text())["features"][0]["passes"] is True
    # the holdout: measured by the harness for the baseline and the kept trial; its outputs do not stay
    assert base.holdout == pytest.approx(base.mean - 0.25) and best.holdout == pytest.approx(best.mean - 0.25)
    assert board.ending.gap == pytest.approx(0.25) and not (repo / "out").exists()
    log = (repo / "progress.txt").read_text()
    assert log.count("| optimize-trial | OPT-1") == 3 and "| optimize-confirmation | OPT-1" in log


def test_the_leaderboard_command_prints_the_trials_json_and_a_plot(searched: tuple[Path, Any], tmp_path: Path) -> None:
    repo, _ = searched
    printed = ralph(repo, "leaderboard", "OPT-1", "--json")
    assert printed.exit_code == 0, printed.output
    trials = json.loads(printed.output)["trials"]
    assert [t["verdict"] for t in trials] == ["keep", "discard", "keep", "discard", "keep"]
    for key in ("commit", "ref", "per_seed", "mean", "std", "diff", "p_value", "hypothesis", "tokens", "cost_usd",
                "wall_s", "holdout"):
        assert key in trials[1]
    shown = ralph(repo, "leaderboard", "OPT-1", "--plot", str(tmp_path / "board.png"))
    assert shown.exit_code == 0 and (tmp_path / "board.png").stat().st_size > 10_000
    assert "confirmed on fresh seeds" in shown.output
    status = ralph(repo, "status", "--json")
    (feature,) = json.loads(status.output)["phases"][0]["features"]
    assert feature["search"]["line"].startswith("search: 3 trials, 1 kept")
    missing = ralph(repo, "leaderboard", "NOPE")
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_a_search_where_nothing_beats_the_baseline_is_not_passed(repo: Path, tmp_path: Path) -> None:
    optimize_repo(repo, with_opt(stop_after_discards=2, budget={"attempts": 5, "hours": 1}), lr=0.3)
    result = search(repo, lr_agent(tmp_path, [0.05, 0.6, 0.1]))
    assert result.exit_code == ExitCode.BLOCKED, result.output
    board = load_board(repo, "OPT-1")
    assert [t.verdict for t in board.candidates] == ["discard", "discard"]  # stopped after 2 in a row
    assert board.ending is not None and not board.ending.confirmed and board.ending.tag is None
    assert "2 trials in a row not kept" in board.ending.stopped
    assert Project.open(repo).ledger.feature("OPT-1").status == "blocked"
    assert json.loads((repo / "PRD.json").read_text())["features"][0].get("passes", False) is False
    shown = ralph(repo, "leaderboard", "OPT-1").output
    assert "no candidate beat the baseline, so there was nothing to confirm" in shown and "was NOT" not in shown


def test_a_trial_that_changes_nothing_is_a_crash_and_is_not_measured(repo: Path, tmp_path: Path) -> None:
    """The agent rewrites config.json as it was (only its hypothesis is new): measuring the incumbent again would
    cost a whole trial's runs for nothing (this repository's seq-JEPA search: about 13 minutes a trial)."""
    optimize_repo(repo, with_opt(budget={"attempts": 2, "hours": 1}))
    (repo / "config.json").write_text('{"lr": 0.1}\n')  # byte for byte what the agent writes for lr 0.1
    git(repo, "commit", "-qam", "config as the agent writes it")
    result = search(repo, lr_agent(tmp_path, [0.1, 0.3]))
    assert result.exit_code == ExitCode.OK, result.output
    same, better = load_board(repo, "OPT-1").candidates
    assert (same.verdict, same.per_seed) == ("crash", {}) and "the agent changed nothing" in same.detail
    assert better.verdict == "keep" and better.incumbent == 0


def test_the_steer_file_reaches_the_next_prompt_and_each_change_is_logged(repo: Path, tmp_path: Path) -> None:
    optimize_repo(repo, with_opt(budget={"attempts": 2, "hours": 1}))
    steer = repo / ".ralph" / "optimize" / "OPT-1" / "STEER.md"
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    cmd = lr_agent(tmp_path, [0.2, 0.3])
    steer.parent.mkdir(parents=True)
    steer.write_text("try lr near 0.3\n")
    result = search(repo, cmd)
    assert result.exit_code == ExitCode.OK, result.output
    sent = sorted(repo.glob(".ralph/runs/*OPT-1-trial-1/prompt.md"))
    assert sent and "try lr near 0.3" in sent[0].read_text()
    assert "## Leaderboard so far" in sent[0].read_text()
    log = (repo / "progress.txt").read_text()
    assert log.count("| optimize-steer | OPT-1") == 1 and "try lr near 0.3" in log


def test_the_agent_sees_discards_and_the_incumbent_diff_in_its_prompt(searched: tuple[Path, Any]) -> None:
    repo, _ = searched
    third = sorted(repo.glob(".ralph/runs/*OPT-1-trial-3/prompt.md"))[0].read_text()
    assert "1 | discard" in third and "lr 0.05 should score higher" in third and "2 | keep" in third
    assert '"lr": 0.3' in third  # the incumbent's diff from the baseline
    board = load_board(repo, "OPT-1")
    for t in board.trials[:3]:  # the holdout figures never reach the agent
        assert f"{t.holdout:.4g}"[:5] not in third if t.holdout is not None else True


# ------------------------------------------------------------------ parallel candidates


def test_parallel_candidates_each_work_in_their_own_worktree(repo: Path, tmp_path: Path) -> None:
    """Three agents at once under bwrap: each records where it runs and tries to write into the other candidates'
    worktrees (found with `git worktree list`) and into the repository; each candidate holds only its own files,
    and nothing reaches the repository but what ralph commits."""
    optimize_repo(repo, with_opt(budget={"attempts": 3, "hours": 1}))
    cmd = lr_agent(tmp_path, [0.3, 0.3, 0.3], extra=f"""
pwd > where.txt
sleep 2
for other in $(git worktree list --porcelain | sed -n 's/^worktree //p'); do
  [ "$other" != "$PWD" ] && echo "from $PWD" > "$other/intruder.txt" 2>/dev/null
done
touch {repo}/intruder-in-repo.txt 2>/dev/null; true""")
    result = search(repo, cmd, "--parallel", "3", "--sandbox", "bwrap")
    assert result.exit_code in (ExitCode.OK, ExitCode.BLOCKED), result.output
    board = load_board(repo, "OPT-1")
    assert [t.n for t in board.candidates] == [1, 2, 3]
    places = []
    for t in board.candidates:
        rev = t.commit or t.ref
        files = git(repo, "ls-tree", "-r", "--name-only", rev).splitlines()
        assert "intruder.txt" not in files and "intruder-in-repo.txt" not in files, files
        places.append(git(repo, "show", f"{rev}:where.txt"))
    assert len(set(places)) == 3 and not any(p.startswith(str(repo)) for p in places)  # three worktrees, not the repo
    assert not list(repo.glob("intruder*"))
    # the first is kept; the others started from the same incumbent, which moved: compared with the new one
    assert board.candidates[0].verdict == "keep"
    assert all("its incumbent moved" in t.detail for t in board.candidates[1:])
    assert git(repo, "worktree", "list").count("\n") == 0  # the worktrees are gone


def test_the_run_summary_counts_the_search_trials_as_its_attempts(repo: Path, tmp_path: Path) -> None:
    """The search's trials are the run's attempts: `--max-iterations` stops it between trials (resumably) and the
    summary at the end of `ralph run` counts them."""
    optimize_repo(repo)
    result = search(repo, lr_agent(tmp_path, [0.05, 0.3, 0.31]), "--max-iterations", "2")
    assert result.exit_code == ExitCode.BUDGET_EXHAUSTED, result.output
    assert "This run: 2 attempt(s)" in result.output
    assert [t.n for t in load_board(repo, "OPT-1").candidates] == [1, 2]


def test_parallel_candidates_are_measured_at_once(repo: Path, tmp_path: Path) -> None:
    """Two candidates whose checks take T (2 seeds x 2 s) each: their checks run at the same time, each on its own
    worktree, so the round's checks take about T, not 2 T (read from the times the runs print in their logs); then
    they are decided in order, the second against the first, kept."""
    plan = with_opt(seeds=[0, 1], confirm_seeds=[10, 11], budget={"attempts": 2, "hours": 1})
    stamp = "python -c 'import time; print(\"{0}\", time.time())'"
    plan["features"][0]["verify"] = [{"name": "train", "seeds": [0, 1], "run": " && ".join(
        [stamp.format("start"), "sleep 2", "python train.py {seed}", stamp.format("end")])}]
    optimize_repo(repo, plan, lr=0.9)  # far from the optimum: two seeds show the gain
    result = search(repo, lr_agent(tmp_path, [0.3, 0.3]), "--parallel", "2")
    assert result.exit_code == ExitCode.OK, result.output
    spans = []  # (first start, last end) of each candidate's runs
    for log in repo.glob(".ralph/runs/*OPT-1-trial-*/train.log"):
        times = {kind: [float(line.split()[1]) for line in log.read_text().splitlines() if line.startswith(kind)]
                 for kind in ("start ", "end ")}
        assert len(times["start "]) == len(times["end "]) == 2
        spans.append((min(times["start "]), max(times["end "])))
    assert len(spans) == 2
    each = max(end - start for start, end in spans)
    both = max(end for _, end in spans) - min(start for start, _ in spans)
    assert both < 1.5 * each, f"a candidate's checks took {each:.1f}s, the two's {both:.1f}s: not at once"
    board = load_board(repo, "OPT-1")
    assert [t.verdict for t in board.candidates] == ["keep", "discard"]
    assert "its incumbent moved" in board.candidates[1].detail  # decided in order, against the new incumbent
    assert all(4 <= t.compute_hours * 3600 < 12 and t.gpu_hours == 0 for t in board.candidates)  # 2 runs of 2 s


def test_a_trial_whose_run_exceeds_trial_hours_is_stopped_and_a_crash(repo: Path, tmp_path: Path) -> None:
    """`budget.trial_hours` stops each of a trial's runs at it: a candidate that makes training slow is a crash
    that says so, after trial_hours, not after the run's own end."""
    plan = with_opt(seeds=[0, 1], confirm_seeds=[10, 11], budget={"attempts": 1, "hours": 1, "trial_hours": 0.001})
    plan["features"][0]["verify"][0]["run"] = SLOW_TRAIN
    optimize_repo(repo, plan)
    result = search(repo, lr_agent(tmp_path, [0.3], extra='echo \'{"lr": 0.3, "sleep": 60}\' > config.json'))
    assert result.exit_code == ExitCode.BLOCKED, result.output
    (trial,) = load_board(repo, "OPT-1").candidates
    assert trial.verdict == "crash" and "timed out after 3.6s (seed 0)" in trial.detail
    assert 3.6 <= trial.compute_hours * 3600 < 30
