"""`ralph run --agent claude|codex|aider` on an optimize feature: the real CLIs, pinned, against local fake APIs,
under the default sandbox (bubblewrap: the fake API is the only place the agent reaches).

The toy search of tests/harness/optimize_fixture.py (`train.py SEED` scores config.json's lr, best at 0.3, noise
≈ 0.01 per seed; the baseline lr 0.1), two trials, each one run of the CLI: the scripted model edits config.json
and writes its hypothesis through the CLI's own tools. Trial 1 (lr 0.3) is a real improvement: kept. Trial 2
(lr 0.295) scores the same within noise, yet its mean over the seeds went up: "the mean went up" would keep it,
the paired test does not, so it is discarded and kept as a ref and a patch. The winner is then confirmed against
the baseline on fresh seeds and tagged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clis.drive import FAKES, KEY, assert_own_network, needs_bwrap, ralph, ralph_env, run_phase
from tests.fakes.cli_apis import Work, Write
from tests.harness.conftest import git, init_repo
from tests.harness.optimize_fixture import optimize_plan, optimize_repo

pytestmark = needs_bwrap

BASELINE_LR = 0.1
TRIALS = {1: (0.3, "lr 0.3 is where the score peaks"), 2: (0.295, "lr 0.295 may score a little higher still")}


def plan() -> dict:
    searched = optimize_plan(budget={"attempts": len(TRIALS), "hours": 1})
    searched["defaults"]["attempt_timeout_s"] = 240  # a CLI's start on a loaded machine, not the toy's training
    return searched


def trial_work(repo: Path, n: int) -> Work:
    """Trial n's conversation: set lr (the file exists: the CLI reads or matches what the incumbent holds), state
    the hypothesis."""
    lr, hypothesis = TRIALS[n]
    before = json.dumps({"lr": TRIALS[n - 1][0] if n > 1 else BASELINE_LR})
    return Work(str(repo), [Write("config.json", json.dumps({"lr": lr}) + "\n", before=before),
                            Write("hypothesis.txt", hypothesis + "\n")], when=f"# Trial {n}\n",
                summary=f"Set lr to {lr}.")


@pytest.mark.parametrize("name", ["aider", "claude", "codex"])  # aider first: the slowest (two runs of ~30 s)
def test_real_cli_candidates_are_kept_and_discarded_as_the_harness_decides(tmp_path: Path, real_cli,
                                                                            name: str) -> None:
    exe = real_cli(name)
    repo = optimize_repo(init_repo(tmp_path / "repo"), plan(), lr=BASELINE_LR)
    start = git(repo, "rev-parse", "HEAD")
    with FAKES[name](*(trial_work(repo, n) for n in TRIALS)) as api:
        env = ralph_env(tmp_path, exe, api.env(KEY))
        done = run_phase(repo, env, "--agent", name, "--max-turns", "8")  # the default sandbox: bwrap here
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    # the model's side: the CLI forwarded each trial's prompt with ralph's leaderboard, and nothing more
    sent = api.texts()
    assert api.keys() == {KEY}
    assert "# Trial 1\n" in sent and "# Trial 2\n" in sent and "# Trial 3" not in sent, sent[-3000:]
    assert "\n1 | keep | " in sent and TRIALS[1][1] in sent  # trial 2 was shown trial 1's verdict and hypothesis

    shown = ralph(env, "leaderboard", "OPT-1", "--json", "-C", str(repo))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    trials = json.loads(shown.stdout)["trials"]
    assert [(t["n"], t["kind"], t["verdict"]) for t in trials] == [
        (0, "baseline", "keep"), (1, "candidate", "keep"), (2, "candidate", "discard"), (3, "confirmation", "keep")], \
        json.dumps(trials, indent=1)[:4000]
    base, best, noise, confirm = trials
    assert base["commit"] == start

    # trial 1: the CLI's edit and hypothesis, kept: ralph's commit, the tag, the incumbent of trial 2
    assert best["hypothesis"] == TRIALS[1][1] and best["p_value"] < 0.05 and best["diff"] > 0.03
    assert best["tokens"] > 0  # the CLI's own usage report reached the board
    assert git(repo, "rev-parse", "ralph/OPT-1/best") == best["commit"]
    assert git(repo, "log", "-1", "--format=%s", best["commit"]) == f"optimize(OPT-1): trial 1 kept: {TRIALS[1][1]}"
    assert json.loads(git(repo, "show", f"{best['commit']}:config.json")) == {"lr": TRIALS[1][0]}
    changed = git(repo, "diff", "--name-only", start, best["commit"], "--", ".", ":(exclude)progress.txt")
    assert changed.splitlines() == ["config.json"]  # hypothesis.txt was read and removed, never committed

    # trial 2: a noise-level change whose mean went up, discarded by the paired test; its diff is kept
    assert noise["hypothesis"] == TRIALS[2][1] and noise["incumbent"] == 1
    assert 0 < noise["diff"] < 0.01 and noise["p_value"] > 0.05, noise
    assert noise["ref"] == "refs/ralph/discarded/OPT-1/2" and noise["commit"] is None
    assert git(repo, "rev-parse", f"{noise['ref']}^") == best["commit"]  # on the incumbent it was compared with
    assert json.loads(git(repo, "show", f"{noise['ref']}:config.json")) == {"lr": TRIALS[2][0]}
    assert f'+{{"lr": {TRIALS[2][0]}}}' in (repo / noise["patch"]).read_text()

    # the end: the winner against the baseline on the fresh seeds; the tree is the winner's, nothing left over
    assert confirm["seeds"] == [10, 11, 12, 13, 14] and sorted(map(int, confirm["versus"])) == confirm["seeds"]
    assert confirm["p_value"] < 0.05 and confirm["commit"] == best["commit"]
    assert json.loads((repo / "config.json").read_text()) == {"lr": TRIALS[1][0]}
    assert not (repo / "hypothesis.txt").exists()
    assert json.loads((repo / "PRD.json").read_text())["features"][0]["passes"] is True
    for n in TRIALS:  # each trial's CLI ran in its own network namespace
        (transcript,) = repo.glob(f".ralph/runs/*OPT-1-trial-{n}/transcript.jsonl")
        assert_own_network(transcript, api.base_url)
    print(f"\n{name}: " + "; ".join(f"{t['n']} {t['verdict']} diff {t['diff']} p {t['p_value']}" for t in trials))
