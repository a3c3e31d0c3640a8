"""Start-up time of `ralph` commands (and `lab --help`), as a ratio to a bare `python -c "import typer, rich, pydantic"`.

Each command runs as a fresh process, the way a person's shell runs it: a few warm-up runs, then
`--runs` timed runs (hyperfine-like; hyperfine itself is not a Python dependency we want), the commands
taking turns. The ratio is of CPU time (user + system, child processes included), measured with the
baseline in the same run: on a shared machine wall time swings with the load and CPU time does not;
the wall times are printed beside it.

    python scripts/bench_startup.py [--runs 10] [--max-ratio 2]

`--max-ratio` makes the script exit 1 when `ralph --help`, `ralph status` or `ralph run --dry-run` is
slower than that many baselines (issue 24 asks for 2).

Two more rows say where the floor is, for any CLI built on these libraries: a typer app whose one command
takes the options `ralph status` takes (typer 0.29 and later build a pydantic TypeAdapter per option on
every call, which loads the pydantic that the bare import leaves lazy), and the same app when it also
validates the plan with ralph's pydantic models (`harness.plan.prd.load_prd`), the least `ralph status`
must do. They are not gated; the last line says how much of each gated command is ralph's own. The commands run with bytecode caching on, as an
installed ralph does (pip compiles it), even where the calling shell sets PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.books.init import init_project

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
GATED = ("ralph --help", "ralph status", "ralph run --dry-run")  # the commands --max-ratio holds
FLOOR = "typer app + PRD.json validated"  # the row the gated commands are also compared with

# A typer app with `ralph status`'s options (their types decide what typer builds per call); with
# `validate`, it also reads the plan the way every ralph command that opens a project does.
TYPER_APP = """
import sys
from pathlib import Path
from typing import Annotated, Optional
import typer

app = typer.Typer()

@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False, write: bool = False,
           repo: Annotated[Path, typer.Option("--repo", "-C", file_okay=False)] = Path("."),
           prd: Annotated[Optional[Path], typer.Option("--prd", dir_okay=False)] = None) -> None:
    if sys.argv[0].endswith("validate"):
        from harness.plan.prd import load_prd
        load_prd(prd or repo / "PRD.json")

app()
"""


@dataclass
class Timing:
    """Seconds per run of one command: wall clock, and CPU (user + system, its child processes included)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one execution of `argv`; exit 0 required."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def timed(cases: dict[str, list[str]], runs: int, warmup: int) -> dict[str, Timing]:
    """`runs` timed executions of every command (after `warmup` untimed ones), taken in turns, so a change in
    the machine's load while the benchmark runs touches every command alike."""
    results = {name: Timing() for name in cases}
    for i in range(warmup + runs):
        for name, argv in cases.items():
            wall, cpu = run_once(argv)
            if i >= warmup:
                results[name].wall.append(wall)
                results[name].cpu.append(cpu)
    return results


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
        for name in ("typer_app", "typer_app_validate"):
            (Path(tmp) / name).write_text(TYPER_APP, encoding="utf-8")
        cases = {
            'python -c "import typer, rich, pydantic"': [sys.executable, "-c", "import typer, rich, pydantic"],
            "typer app, status's options": [sys.executable, str(Path(tmp) / "typer_app"), "-C", str(repo)],
            FLOOR: [sys.executable, str(Path(tmp) / "typer_app_validate"), "-C", str(repo)],
            "ralph --help": [*ralph, "--help"],
            "ralph --version": [*ralph, "--version"],
            "ralph status": [*ralph, "status", "-C", str(repo)],
            "ralph validate": [*ralph, "validate", "-C", str(repo)],
            "ralph run --dry-run": [*ralph, "run", "--dry-run", "-C", str(repo)],
        }
        lab = Path(sys.executable).parent / "lab"
        if lab.exists():  # the lab extra is installed: its help must not load torch either
            cases["lab --help"] = [str(lab), "--help"]
        results = timed(cases, args.runs, args.warmup)

    base = next(iter(results.values()))
    ratio = {name: statistics.median(t.cpu) / statistics.median(base.cpu) for name, t in results.items()}
    width = max(map(len, results))
    print(f"{'command':<{width}}  {'wall':>7}  {'min':>6}  {'CPU':>6}  {'ratio':>6}   "
          f"(medians of {args.runs} runs each; ratio of CPU time)")
    for name, t in results.items():
        print(f"{name:<{width}}  {statistics.median(t.wall) * 1000:5.0f}ms  {min(t.wall) * 1000:4.0f}ms  "
              f"{statistics.median(t.cpu) * 1000:4.0f}ms  {ratio[name]:5.2f}×")
    floor = statistics.median(results[FLOOR].cpu)
    print("ralph's own share, CPU time over the floor row: " + ", ".join(
        f"{name} {statistics.median(results[name].cpu) / floor:.2f}×" for name in GATED))
    slow = [f"{name} takes {ratio[name]:.2f}×" for name in GATED if args.max_ratio is not None
            and ratio[name] > args.max_ratio]
    if slow:
        raise SystemExit(f"{'; '.join(slow)} the bare import's CPU time (limit {args.max_ratio:g}×)")


if __name__ == "__main__":
    main()
