"""What the sandbox adds to an agent attempt and to a check: `--sandbox bwrap` against `none`.

Each timed run is one attempt of a command agent (`CommandAgent.run`, as the loop calls it) whose CLI makes
one request to a local fake model API and exits; so the time is the attempt's fixed cost (process group,
reaper, mounts, private home, bubblewrap, the proxy thread and the relay) plus one round trip. Three settings:
`none` (the baseline, measured in the same run, so the ratios do not depend on how loaded the machine is),
`bwrap` with no network (a CLI ralph does not know), and `bwrap` with the API allowed (requests through the
proxy). Medians of `--runs` runs after `--warmup` untimed ones.

Then the same for one check command (`python -c pass`, as `run_in_check_tree` launches it through
`Environment.run`): `none` without the checks' own temporary directory (the baseline: what a check cost
before), `none` with it (`environment.private_tmp`, every check now), and `bwrap` (read-only root, no network).

    python scripts/bench_sandbox.py [--runs 15] [--warmup 2] [--max-ratio R]

`--max-ratio` makes the script exit 1 when bwrap with the proxy is slower than that many baselines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/fakes

from harness.agents.base import Budget, Task  # noqa: E402
from harness.agents.command import CommandAgent  # noqa: E402
from harness.sandbox.environment import Environment, bwrap_problem  # noqa: E402
from tests.fakes.local_server import answering  # noqa: E402


def attempt(agent: CommandAgent, repo: Path, sandbox: str, n: int) -> float:
    """Seconds of one attempt; the CLI's request must have succeeded (or, with no API allowed, failed)."""
    task = Task("BENCH", n, "", "bench", repo, repo / ".ralph" / "runs" / sandbox / f"{n}.jsonl",
                sandbox=sandbox)  # type: ignore[arg-type]
    start = time.perf_counter()
    result = agent.run(task, Budget(timeout_s=60))
    elapsed = time.perf_counter() - start
    if result.status != "completed":
        raise SystemExit(f"attempt {n} under {sandbox} ended {result.status}: {result.error}")
    return elapsed


def check(sandbox: str, repo: Path, own_tmp: bool) -> float:
    """Seconds of one check command run the way the judge runs it."""
    start = time.perf_counter()
    done = Environment(sandbox).run(f"{sys.executable} -c pass", repo, timeout_s=60, env={"PATH": "/usr/bin:/bin"},
                                    network=False, own_tmp=own_tmp)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the check under {sandbox} exited {done.returncode}: {done.output_tail}")
    return elapsed


def table(times: dict[str, list[float]], baseline: str) -> None:
    base = statistics.median(times[baseline])
    print(f"{'setting':<34}{'median s':>10}{'min s':>9}{'max s':>9}{'ratio':>8}")
    for label, runs in times.items():
        median = statistics.median(runs)
        print(f"{label:<34}{median:>10.3f}{min(runs):>9.3f}{max(runs):>9.3f}{median / base:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-ratio", type=float, default=None)
    args = parser.parse_args()
    problem = bwrap_problem()
    if problem:
        raise SystemExit(f"cannot measure the sandbox here: {problem}")

    api, hits = answering(b'{"data": []}')
    with tempfile.TemporaryDirectory() as tmp, api:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        # exit 0 either way: with no network the request fails, which is what that setting is
        cli = f"curl -s -m 10 -o /dev/null {api.base_url}/v1/models || true"
        settings = {
            "none (baseline)": ("none", CommandAgent(cli, api=(api.base_url,))),
            "bwrap, no network": ("bwrap", CommandAgent(cli)),
            "bwrap + proxy to the API": ("bwrap", CommandAgent(cli, api=(api.base_url,))),
        }
        times: dict[str, list[float]] = {}
        for label, (sandbox, agent) in settings.items():
            runs = [attempt(agent, repo, sandbox, i) for i in range(args.warmup + args.runs)]
            times[label] = runs[args.warmup:]
        served = len(hits)

    print("one agent attempt")
    table(times, "none (baseline)")
    base = statistics.median(times["none (baseline)"])
    proxy = statistics.median(times["bwrap + proxy to the API"])
    print(f"added per attempt by bwrap + proxy: {proxy - base:.3f} s (median); runs {args.runs}, "
          f"requests served {served} (expected {2 * (args.warmup + args.runs)}: none and proxy; "
          f"python {sys.version.split()[0]})")
    if served != 2 * (args.warmup + args.runs):
        raise SystemExit("the API did not see every request it should have: the figures measure something else")
    with tempfile.TemporaryDirectory() as tmp:
        checks = {label: [check(kind, Path(tmp), own) for _ in range(args.warmup + args.runs)][args.warmup:]
                  for label, (kind, own) in {"none, host /tmp (baseline)": ("none", False),
                                             "none, its own /tmp (private_tmp)": ("none", True),
                                             "bwrap": ("bwrap", True)}.items()}
    print("\none check command")
    table(checks, "none, host /tmp (baseline)")
    if args.max_ratio is not None and proxy / base > args.max_ratio:
        raise SystemExit(f"bwrap + proxy is {proxy / base:.2f}x the baseline, over --max-ratio {args.max_ratio}")


if __name__ == "__main__":
    main()
