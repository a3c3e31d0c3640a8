"""The overhead ralph adds per optimize trial, as a ratio to running the same checks bare.

A toy search (tests/harness/optimize_fixture.py: `python train.py SEED`, five seeds, a scripted agent that
edits one file) runs `--trials` trials under `ralph run`; the bare side runs the same commands, one trial's
worth per trial (`python train.py SEED` for each seed, in the repository, nothing else), in the same process
of this script, so both sides see the same machine load. ralph's side includes everything a trial costs
besides the training itself: the agent process, the guards, the clean checkout, the set-aside metric
files, the keep rule, the commit or the discarded ref and patch, the records; and the baseline and the
confirmation, spread over the trials.

    python scripts/bench_optimize.py [--trials 6] [--train-s 0.0]

`--train-s` makes each seeded run sleep that long first (a stand-in for real training), to show how the
ratio falls as the training dominates.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.cli import app  # noqa: E402
from harness.optimize.board import load_board  # noqa: E402
from tests.harness.optimize_fixture import lr_agent, optimize_plan, optimize_repo  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]


def git_repo(path: Path) -> Path:
    path.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "bench"], ["config", "user.email", "b@e"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    return path


def slow(repo: Path, seconds: float) -> None:
    """Make each seeded run sleep `seconds` first (a stand-in for training), committed."""
    if seconds:
        train = repo / "train.py"
        train.write_text(f"import time; time.sleep({seconds})\n" + train.read_text())
        subprocess.run(["git", "commit", "-qam", "slow"], cwd=repo, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--train-s", type=float, default=0.0, help="seconds each seeded run sleeps first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ralph-bench-opt-") as tmp:
        tmp_path = Path(tmp)
        repo = git_repo(tmp_path / "repo")
        plan = optimize_plan(budget={"attempts": args.trials, "hours": 1})
        optimize_repo(repo, plan)
        slow(repo, args.train_s)
        lrs = [0.1 + 0.04 * k for k in range(args.trials)]
        start = time.perf_counter()
        result = CliRunner().invoke(app, ["run", "--agent", "command", "--agent-cmd", lr_agent(tmp_path, lrs),
                                          "--no-input", "-C", str(repo)])
        ralph_s = time.perf_counter() - start
        board = load_board(repo, "OPT-1")
        if result.exit_code not in (0, 5) or board is None or len(board.candidates) != args.trials:
            print(result.output)
            return 1
        bare = git_repo(tmp_path / "bare")
        optimize_repo(bare, plan)
        slow(bare, args.train_s)
        # what ralph measured: the baseline, each measured candidate, and (when one was kept) the confirmation's
        # two sides on fresh seeds; a crashed or unchanged trial runs nothing
        measurements = sum(bool(t.per_seed) + bool(t.versus) for t in board.trials)
        start = time.perf_counter()
        for k in range(measurements):
            (bare / "config.json").write_text(json.dumps({"lr": lrs[k % len(lrs)]}))
            for seed in SEEDS:
                subprocess.run([sys.executable, "train.py", str(seed)], cwd=bare, check=True)
        bare_s = time.perf_counter() - start
    verdicts = ", ".join(t.verdict for t in board.candidates)
    print(f"{args.trials} trials ({verdicts}); train {args.train_s:g}s per seeded run")
    print(f"ralph run: {ralph_s:.1f}s in all, {ralph_s / args.trials:.2f}s per trial")
    print(f"bare:      {bare_s:.1f}s for the same {measurements} x {len(SEEDS)} runs, {bare_s / args.trials:.2f}s per trial")
    print(f"overhead:  {(ralph_s - bare_s) / args.trials:.2f}s per trial; ratio {ralph_s / bare_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
