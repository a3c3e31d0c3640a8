from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.judge.checks import aggregate, lookup, run_check, run_checks
from harness.plan.prd import Check


def metric(file: str, key: str, op: str, value: float, **kw) -> Check:
    return Check(name="gate", metric={"file": file, "key": key, "op": op, "value": value}, **kw)


def test_run_check_pass_and_fail_keep_exit_code_and_tail(tmp_path: Path):
    ok = run_check(Check(name="ok", run="echo hello"), tmp_path, default_timeout_s=10, commit="abc")
    assert ok.verdict == "pass" and ok.exit_code == 0 and "hello" in ok.output_tail and ok.commit == "abc"
    bad = run_check(Check(name="bad", run="python3 -c 'print(\"x\"*5000); raise SystemExit(3)'"), tmp_path,
                    default_timeout_s=10)
    assert bad.verdict == "fail" and bad.exit_code == 3 and bad.detail == "exit 3"
    assert 1000 < len(bad.output_tail) <= 2048


def test_timeout_kills_grandchildren(tmp_path: Path):
    pidfile = tmp_path / "grandchild.pid"
    check = Check(name="hang", run=f"sh -c 'sleep 60 & echo $! > {pidfile}; wait'", timeout_s=1)
    start = time.monotonic()
    ev = run_check(check, tmp_path, default_timeout_s=30)
    assert ev.verdict == "timeout" and "timed out after 1s" in ev.detail
    assert time.monotonic() - start < 10
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"grandchild {pid} survived the timeout")


def test_secrets_are_stripped_unless_allowed(tmp_path: Path, monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "GITHUB_TOKEN", "MY_SECRET", "HF_API_KEY", "WANDB_API_KEY"):
        monkeypatch.setenv(name, "s3cret")
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    check = Check(name="env", run="env | sort > env.txt")
    assert run_check(check, tmp_path, default_timeout_s=10, env_allow=["HF_API_KEY"]).passed
    seen = (tmp_path / "env.txt").read_text()
    assert "PLAIN_SETTING=visible" in seen and "HF_API_KEY=s3cret" in seen
    for name in ("ANTHROPIC_API_KEY", "GITHUB_TOKEN", "MY_SECRET", "WANDB_API_KEY"):
        assert name not in seen


def test_seeds_substitute_and_stop_at_first_failure(tmp_path: Path):
    check = Check(name="seeded", run="echo {seed} >> seeds.txt && test {seed} -lt 1", seeds=[0, 1, 2])
    ev = run_check(check, tmp_path, default_timeout_s=10, log_dir=tmp_path / "logs")
    assert ev.verdict == "fail" and ev.detail == "exit 1 (seed 1)"
    assert (tmp_path / "seeds.txt").read_text().split() == ["0", "1"]
    assert "$ echo 1 >> seeds.txt" in Path(ev.log).read_text()


def test_lookup_prefers_flat_dotted_keys():
    data = {"eval.linacc_agg": 0.7, "eval": {"linacc_agg": 0.1, "r2@M5": 0.3}, "runs": [{"acc": 0.9}]}
    assert lookup(data, "eval.linacc_agg") == 0.7
    assert lookup(data, "eval.r2@M5") == 0.3
    assert lookup(data, "runs.0.acc") == 0.9
    assert lookup({"a": {"b.c": {"d": 1}}}, "a.b.c.d") == 1
    assert lookup({"probe": {"by_layer": [0.5, 0.8]}}, "probe.by_layer.1") == 0.8  # an index as the last part
    with pytest.raises(KeyError):
        lookup(data, "eval.missing")
    with pytest.raises(KeyError):
        lookup({"by_layer": [0.5]}, "by_layer.3")


def test_metric_gate_pass_fail_missing_file_and_key(tmp_path: Path):
    (tmp_path / "r.json").write_text(json.dumps({"eval.linacc_agg@M5": 0.42, "eval.linacc_agg": 0.3}))
    ok = run_check(metric("r.json", "eval.linacc_agg@M5", ">=", 0.4), tmp_path, default_timeout_s=1)
    assert ok.passed and ok.figures == {"eval.linacc_agg@M5": 0.42} and "r.json" in ok.sources
    low = run_check(metric("r.json", "eval.linacc_agg", ">", 0.3), tmp_path, default_timeout_s=1)
    assert low.verdict == "fail" and "needs > 0.3" in low.detail
    gone = run_check(metric("nope.json", "x", ">=", 0), tmp_path, default_timeout_s=1)
    assert gone.verdict == "fail" and "nope.json not found" in gone.detail
    nokey = run_check(metric("r.json", "eval.linacc_ag", ">=", 0), tmp_path, default_timeout_s=1)
    assert nokey.verdict == "fail" and "key 'eval.linacc_ag' not found" in nokey.detail and "similar" in nokey.detail
    (tmp_path / "bad.json").write_text('{"x": ')
    broken = run_check(metric("bad.json", "x", ">=", 0), tmp_path, default_timeout_s=1)
    assert broken.verdict == "error" and "not valid JSON" in broken.detail


def test_aggregation_mean_and_mean_minus_std(tmp_path: Path):
    for seed, v in enumerate([0.50, 0.60, 0.70]):
        (tmp_path / f"r{seed}.json").write_text(json.dumps({"acc": v}))
    mean, std, score = aggregate([0.5, 0.6, 0.7], "mean-std")
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1) and score == pytest.approx(0.5)
    ok = run_check(metric("r{seed}.json", "acc", ">=", 0.55, seeds=[0, 1, 2]), tmp_path, default_timeout_s=1)
    assert ok.passed and ok.figures["acc"] == pytest.approx(0.6) and ok.figures["acc[seed=2]"] == 0.7
    strict = run_check(metric("r{seed}.json", "acc", ">=", 0.55, seeds=[0, 1, 2], agg="mean-std"), tmp_path,
                       default_timeout_s=1)
    assert strict.verdict == "fail" and "mean-std(acc) = 0.5" in strict.detail
    partial = run_check(metric("r{seed}.json", "acc", ">=", 0, seeds=[0, 5]), tmp_path, default_timeout_s=1)
    assert partial.verdict == "fail" and "r5.json not found" in partial.detail


def test_run_checks_runs_all_and_reports(tmp_path: Path):
    seen = []

    class Rec:
        def started(self, check, index, total):
            seen.append(("start", check.name, index, total))

        def line(self, text):
            seen.append(("line", text))

        def finished(self, evidence):
            seen.append(("done", evidence.verdict))

    checks = [Check(name="a", run="false"), Check(name="b", run="echo hi")]
    evs = run_checks(checks, tmp_path, default_timeout_s=5, reporter=Rec())
    assert [e.verdict for e in evs] == ["fail", "pass"]
    assert ("line", "hi") in seen and seen[0] == ("start", "a", 0, 2) and seen[-1] == ("done", "pass")
