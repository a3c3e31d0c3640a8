"""Scale benchmark of ralph's records: a plan of 2,000 features and a 50 MB progress.txt.

Each figure is compared with the same operation on a small repository (2 features, a 1 KB log)
measured in the same run, so the ratios say how cost grows with the records, on any machine:

- `progress.append` and `progress.tail(3)` (the prompt's "recent progress") on the two logs;
- `ralph status`, `ralph validate`, `ralph verify <one feature>` as users run them (subprocesses);
- `ralph run --dry-run` over a phase of 1,000 features against a phase of 1;
- the same four in-process (without interpreter start and imports, shown by `ralph --help`).

Run with `make bench` or `python scripts/bench_scale.py [--features N] [--log-mb M]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.books.ledger import FeatureState, Ledger
from harness.books.progress import HEADER, LogEntry, ProgressLog
from harness.books.records import Evidence
from harness.judge.verify import verify_feature
from harness.plan.prd import checks_digest, load_prd, prd_warnings
from harness.project import Project
from harness.run.loop import preview
from harness.settings import RunSettings
from harness.views.status import board

RALPH = str(Path(sys.executable).parent / "ralph")


def make_repo(root: Path, features: int, dry_run_phase: int, log_bytes: int) -> Path:
    """A git repository with `features` passing features (phase 1 holds all but `dry_run_phase`
    of them, phase 2 holds those, pending) and a progress.txt of about `log_bytes`."""
    repo = root
    repo.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "bench"], ["config", "user.email", "b@x"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    feats = [{"id": f"F-{i:04d}", "phase": 1 if i < features - dry_run_phase else 2, "title": f"feature {i}",
              "description": "does one thing " * 5, "verify": [{"name": "ok", "run": "true"}]}
             for i in range(features)]
    plan = {"version": 1, "project": "bench", "phases": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
            "features": feats}
    (repo / "PRD.json").write_text(json.dumps(plan, indent=2))
    (repo / ".gitignore").write_text(".ralph/\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "plan"], cwd=repo, check=True)
    prd = load_prd(repo / "PRD.json")
    ledger = Ledger(repo)
    for f in prd.features:  # passing and bound, as `ralph verify` leaves them (one save, for the setup's speed)
        if f.phase == 1:
            ev = Evidence(check="ok", kind="run", verdict="pass", detail="exit 0", duration_s=0.01, command="true",
                          output_tail="ok\n" * 50, check_sha256=f.verify[0].digest)
            ledger.state.features[f.id] = FeatureState(status="passing", attempts=1, last_evidence=[ev],
                                                       checks_sha256=checks_digest(f.verify))
    ledger.save()
    evidence = next(iter(ledger.state.features.values())).last_evidence
    block = LogEntry(kind="attempt", subject="F-0000", phase=1, fields={"attempt": "1"}, agent="replay",
                  checks=evidence,
                  summary="the agent's account of what it changed and why\n" * 10).render()
    copies = max(1, (log_bytes - len(HEADER)) // len(block))
    with open(repo / "progress.txt", "w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for _ in range(copies):
            out.write(block)
    ProgressLog(repo).accept_edits(by="bench")  # records the log as ralph's own
    return repo


def best_of(n: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cli(repo: Path, *args: str) -> Callable[[], object]:
    def go() -> None:
        argv = [RALPH, *args] + ([] if args == ("--help",) else ["-C", str(repo)])
        done = subprocess.run(argv, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "120"})
        if done.returncode not in (0, 1):
            raise SystemExit(f"ralph {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return go


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=int, default=2000)
    ap.add_argument("--dry-run-features", type=int, default=1000)
    ap.add_argument("--log-mb", type=float, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each figure")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ralph-bench-") as tmp:
        t0 = time.perf_counter()
        small = make_repo(Path(tmp) / "small", 2, 1, 1024)
        large = make_repo(Path(tmp) / "large", a.features, a.dry_run_features, int(a.log_mb * 2**20))
        size = (large / "progress.txt").stat().st_size
        print(f"setup {time.perf_counter() - t0:.1f}s: large repo {a.features} features, progress.txt "
              f"{size / 2**20:.1f} MB; small repo 2 features, {(small / 'progress.txt').stat().st_size} B", flush=True)
        entry = LogEntry(kind="verify", subject="F-0001", phase=1, fields={"status": "passing"})
        width = 55
        print(f"{'operation':<{width}}  {'small':>9}  {'large':>9}  {'ratio':>7}  target (large)", flush=True)
        settings = RunSettings()
        for name, fn, target in [
            ("progress.append (one entry)", lambda r: (lambda: ProgressLog(r).append(entry)), ""),
            ("progress.tail(3) (a prompt's log part)", lambda r: (lambda: ProgressLog(r).tail(3)), ""),
            ("in-process: open + status board", lambda r: (lambda: board(Project.open(r))), "< 2 s"),
            ("in-process: load PRD + validate warnings",
             lambda r: (lambda: prd_warnings(load_prd(r / "PRD.json"), r)), "< 2 s"),
            ("in-process: open + verify F-0001",
             lambda r: (lambda: (lambda p: verify_feature(p, p.prd.feature("F-0001")))(Project.open(r))), "< 2 s"),
            ("in-process: open + dry run of phase 2",
             lambda r: (lambda: preview(Project.open(r), 2, settings)), "< 10 s"),
            ("ralph --help (interpreter start + imports)", lambda r: cli(r, "--help"), ""),
            ("ralph status", lambda r: cli(r, "status"), "< 2 s"),
            ("ralph validate", lambda r: cli(r, "validate"), "< 2 s"),
            ("ralph verify F-0001", lambda r: cli(r, "verify", "F-0001"), "< 2 s"),
            (f"ralph run --dry-run (phase 2: {a.dry_run_features} vs 1 features)",
             lambda r: cli(r, "run", "--phase", "2", "--dry-run"), "< 10 s"),
        ]:
            s, big = best_of(a.repeat, fn(small)), best_of(a.repeat, fn(large))
            print(f"{name:<{width}}  {s * 1e3:>7.1f}ms  {big * 1e3:>7.1f}ms  {big / s:>6.1f}x  {target}", flush=True)


if __name__ == "__main__":
    main()
