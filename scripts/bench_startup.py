"""Start-up time of `ralph` commands (and `lab --help`), as a ratio to a bare `python -c "import typer, rich, pydantic"`.

Each command runs as a fresh process, the way a person's shell runs it: a few warm-up runs, then
`--runs` timed runs (hyperfine-like; hyperfine itself is not a Python dependency we want). The
baseline is measured in the same run, so the ratio does not depend on how loaded the machine is.

    python scripts/bench_startup.py [--runs 10] [--max-ratio 2.5]

`--max-ratio` makes the script exit 1 when `ralph --help` is slower than that many baselines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.books.init import init_project


def timed(argv: list[str], runs: int, warmup: int) -> list[float]:
    """Wall seconds of `runs` executions of `argv` (after `warmup` untimed ones); exit 0 required."""
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
        if i >= warmup:
            times.append(elapsed)
    return times


def ralph_argv() -> list[str]:
    """The installed `ralph` next to this interpreter (what a user's shell runs), else the module."""
    exe = Path(sys.executable).parent / "ralph"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from harness.cli import main; main()"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-ratio", type=float, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        init_project(repo, "seq-jepa", force=False)  # a plan with features, so the dry run has prompts to show
        ralph = ralph_argv()
        cases = {
            'python -c "import typer, rich, pydantic"': [sys.executable, "-c", "import typer, rich, pydantic"],
            "ralph --help": [*ralph, "--help"],
            "ralph --version": [*ralph, "--version"],
            "ralph status": [*ralph, "status", "-C", str(repo)],
            "ralph validate": [*ralph, "validate", "-C", str(repo)],
            "ralph run --dry-run": [*ralph, "run", "--dry-run", "-C", str(repo)],
        }
        lab = Path(sys.executable).parent / "lab"
        if lab.exists():  # the lab extra is installed: its help must not load torch either
            cases["lab --help"] = [str(lab), "--help"]
        results = {name: timed(argv, args.runs, args.warmup) for name, argv in cases.items()}

    base = statistics.mean(next(iter(results.values())))
    width = max(map(len, results))
    print(f"{'command':<{width}}  {'mean':>8}  {'± std':>7}  {'min':>7}  {'ratio':>6}   ({args.runs} runs each)")
    for name, times in results.items():
        mean = statistics.mean(times)
        print(f"{name:<{width}}  {mean * 1000:6.0f}ms  {statistics.stdev(times) * 1000:5.0f}ms  "
              f"{min(times) * 1000:5.0f}ms  {mean / base:5.2f}×")
    ratio = statistics.mean(results["ralph --help"]) / base
    if args.max_ratio is not None and ratio > args.max_ratio:
        raise SystemExit(f"ralph --help takes {ratio:.2f}× the bare import (limit {args.max_ratio:g}×)")


if __name__ == "__main__":
    main()
