"""Three seeds of one check: sequential on the local executor vs parallel as Ray jobs.

What a user does instead of the Ray executor is `ralph verify` with the seeds run one after the
other on this machine; that is the baseline, timed in the same run against a real local Ray head
(tests/fakes/ray_head.py, 2 CPUs). Both sides are `ralph verify FEATURE` as a user types it (a
subprocess, interpreter start and checks included; on Ray also the working_dir upload, job start-up
and reading the results back). A third figure, one seed as one Ray job, shows the fixed cost a job
adds. The per-seed work is `--seconds` of waiting (`--work sleep`: a run bound by its own device,
as a GPU job is; on a cluster each seed has its own) or of busy CPU (`--work cpu`: on this 2-core
box the seeds then compete for the cores, so the ratio shows this machine, not a cluster).

Run inside a private network namespace, as `make bench` does:
  unshare -n sh -c 'ip link set lo up && .venv/bin/python scripts/bench_ray_seeds.py'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.ray_head import LocalRayHead, private_network  # noqa: E402

WORK = {
    "sleep": "import json, sys, time\ntime.sleep({s})\n",
    "cpu": "import json, sys, time\nt = time.monotonic()\nwhile time.monotonic() - t < {s}: sum(range(10000))\n",
}
WRITE = "json.dump({'loss': 1.0 / (1 + int(sys.argv[1]))}, open(f'm{sys.argv[1]}.json', 'w'))\n"


def feature(fid: str, seeds: list[int], executor: str) -> dict:
    run = {"name": "train", "run": "python work.py {seed}", "seeds": seeds, "timeout_s": 600}
    if executor == "ray":
        run.update(executor="ray", resources={"cpus": 0.5})
    gate = {"name": "loss", "seeds": seeds, "metric": {"file": "m{seed}.json", "key": "loss", "op": "<=", "value": 1}}
    return {"id": fid, "phase": 1, "title": fid, "verify": [run, gate]}


def make_repo(root: Path, work: str, seconds: float) -> Path:
    repo = root / "repo"
    repo.mkdir()
    plan = {"version": 1, "project": "bench-ray-seeds", "phases": [{"id": 1, "name": "bench"}],
            "features": [feature("LOCAL-3", [0, 1, 2], "local"), feature("RAY-3", [0, 1, 2], "ray"),
                         feature("RAY-1", [0], "ray")]}
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    (repo / "work.py").write_text(WORK[work].format(s=seconds) + WRITE)
    (repo / ".gitignore").write_text(".ralph/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "plan"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def timed_verify(repo: Path, fid: str, env: dict[str, str]) -> float:
    t = time.monotonic()
    res = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "verify", fid, "-C", str(repo)],
                         capture_output=True, text=True, env=env, timeout=900)
    elapsed = time.monotonic() - t
    if res.returncode != 0:
        raise SystemExit(f"ralph verify {fid} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="work per seed")
    ap.add_argument("--work", choices=sorted(WORK), default="sleep")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/ray_seeds.json"))
    args = ap.parse_args()
    if not private_network():
        raise SystemExit("run inside a private network namespace: unshare -n sh -c 'ip link set lo up && ...'")
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp, LocalRayHead(num_cpus=2) as head:
        repo = make_repo(Path(tmp), args.work, args.seconds)
        env = {**os.environ, "RAY_ADDRESS": head.address}
        timed_verify(repo, "RAY-1", env)  # warm-up: the first job on a fresh head starts its runtime-env agent
        sequential = timed_verify(repo, "LOCAL-3", env)
        parallel = timed_verify(repo, "RAY-3", env)
        one = timed_verify(repo, "RAY-1", env)
    result = {"work": args.work, "seconds_per_seed": args.seconds, "seeds": 3,
              "local_sequential_s": round(sequential, 2), "ray_parallel_s": round(parallel, 2),
              "ray_one_seed_s": round(one, 2), "parallel_over_sequential": round(parallel / sequential, 3),
              "parallel_over_one_seed": round(parallel / one, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"3 seeds x {args.seconds:g}s ({args.work}): local sequential {sequential:.1f}s, Ray parallel {parallel:.1f}s "
          f"(ratio {parallel / sequential:.2f}); one seed on Ray {one:.1f}s (parallel/one {parallel / one:.2f})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
