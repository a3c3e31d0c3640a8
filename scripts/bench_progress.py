"""`ralph verify` of 10 features with a long progress.txt, as a ratio to the same verify with an empty one.

The same plan (10 features, one quick check each) and the same state in both repositories; only
progress.txt differs: one holds nothing but ralph's header, the other `--progress-mb` MB of earlier
entries (committed, and recorded as ralph's own with `ralph log --accept-edits`). Each timed run starts
from a fresh copy of its repository, so every run verifies the same tree against the same books; the two
repositories take turns. The ratio is of wall time (a long log costs reading and writing, not only CPU);
CPU time is printed beside it.

    python scripts/bench_progress.py [--runs 3] [--progress-mb 50] [--max-ratio 1.5]

`--max-ratio` makes the script exit 1 when the long log makes verify slower than that many times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench_startup import Timing, ralph_argv, run_once

FEATURES = 10


def plan() -> dict:
    """One phase of `FEATURES` features, each judged by one quick run check."""
    return {
        "version": 1, "project": "bench", "phases": [{"id": 1, "name": "bench", "goal": "time verify"}],
        "features": [{"id": f"F{i:02d}", "phase": 1, "title": f"feature {i}",
                      "verify": [{"name": "runs", "run": f"python -c 'print({i})'"}]} for i in range(FEATURES)],
    }


def entry(i: int) -> str:
    """One earlier attempt's block, as ralph writes them (about 600 bytes)."""
    return (f"## 2026-01-01T00:00:00Z | attempt | F{i % FEATURES:02d} | phase 1\nattempt: {i}\n"
            "agent: command sh | turns 3 | tokens 1200 | cost $0.0000 | time 12.0s\nchecks:\n"
            "  - fail    runs: exit 1 (0.1s)\n" + "summary:\n" + "".join(f"  line {j} of the agent's account\n"
                                                                         for j in range(12)) + "\n")


def make_repo(root: Path, ralph: list[str], progress_bytes: int) -> Path:
    """A committed repository with the plan, and progress.txt of about `progress_bytes` bytes ralph accepts."""
    repo = root / f"repo-{progress_bytes}"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "PRD.json").write_text(json.dumps(plan(), indent=2) + "\n")
    (repo / ".gitignore").write_text(".ralph/\n")
    with open(repo / "progress.txt", "w") as f:
        f.write("# progress.txt\n\n")
        written, i = 0, 0
        while written < progress_bytes:
            written += f.write(entry(i))
            i += 1
    subprocess.run([*ralph, "log", "--accept-edits", "--by", "bench", "-C", str(repo)], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench plan"], check=True)
    return repo


def timed_verify(ralph: list[str], repos: list[Path], runs: int, warmup: int) -> dict[Path, Timing]:
    """`ralph verify --all` on fresh copies of each repository, `runs` times (after `warmup` untimed rounds), the
    repositories taking turns so that a change in the machine's load touches both alike."""
    results = {repo: Timing() for repo in repos}
    for i in range(warmup + runs):
        for repo in repos:
            copy = repo.with_name(repo.name + "-run")
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(repo, copy, symlinks=True)
            wall, cpu = run_once([*ralph, "verify", "--all", "-C", str(copy)])
            if i >= warmup:
                results[repo].wall.append(wall)
                results[repo].cpu.append(cpu)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--progress-mb", type=float, default=50)
    parser.add_argument("--max-ratio", type=float, default=None)
    args = parser.parse_args()

    ralph = ralph_argv()
    with tempfile.TemporaryDirectory() as tmp:
        empty = make_repo(Path(tmp), ralph, 0)
        long = make_repo(Path(tmp), ralph, int(args.progress_mb * 1e6))
        size = (long / "progress.txt").stat().st_size
        timing = timed_verify(ralph, [empty, long], args.runs, args.warmup)
    names = {empty: "empty progress.txt", long: f"{size / 1e6:.0f} MB progress.txt"}

    base = statistics.median(timing[empty].wall)
    print(f"ralph verify --all, {FEATURES} features (medians of {args.runs} runs each, taken in turns)")
    for repo, t in timing.items():
        print(f"  {names[repo]:<20} wall {statistics.median(t.wall):6.2f}s  {statistics.median(t.wall) / base:5.2f}×"
              f"   CPU {statistics.median(t.cpu):6.2f}s  {statistics.median(t.cpu) / statistics.median(timing[empty].cpu):5.2f}×")
    ratio = statistics.median(timing[long].wall) / base
    if args.max_ratio is not None and ratio > args.max_ratio:
        raise SystemExit(f"a {args.progress_mb:g} MB progress.txt makes ralph verify {ratio:.2f}× slower "
                         f"(limit {args.max_ratio:g}×)")


if __name__ == "__main__":
    main()
