"""`make demo`, act one (the harness part), as a newcomer runs it: every step exits as the script
expects (6: entry not met, 3: awaiting approval after a failed gate and its retry, 0 after approval)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_offline_demo_runs_through(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "ralph").exists():
        pytest.skip("scripts/demo.sh runs .venv/bin/ralph; `make setup` builds it")
    env = {**os.environ, "DEMO_LAB": "0", "DEMO_DIR": str(tmp_path / "demo")}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.count("as expected") == 3 and "DEMO-2 attempt 2/3" in out
    log = subprocess.run(["git", "log", "--format=%s %(trailers:key=Ralph-Metrics,valueonly)"], cwd=tmp_path / "demo",
                         capture_output=True, text=True, check=True).stdout
    assert "feat(DEMO-1)" in log and "feat(DEMO-2)" in log and "eval.accuracy" in log
