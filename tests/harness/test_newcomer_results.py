"""Looking at results: `ralph show` renders an attempt from its transcript, `ralph report` writes a
static page that opens from disk, rendered here in headless Chromium and screenshotted."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import app
from harness.views.show import AttemptRecord, render_attempt
from tests.harness.conftest import git

PLAN: dict[str, Any] = {
    "version": 1, "project": "results-test", "description": "a plan to look at",
    "defaults": {"max_attempts": 3, "attempt_timeout_s": 60, "check_timeout_s": 30},
    "phases": [{"id": 1, "name": "Build", "approval": True}],
    "features": [{"id": "FEAT-B", "phase": 1, "title": "score well",
                  "verify": [{"name": "score", "run": "python score.py"},
                             {"name": "score gate", "metric": {"file": "score.json", "key": "score", "op": ">=",
                                                                "value": 0.5}}]}],
}


def score_script(value: float) -> str:
    return f"import json\nprint('scoring')\njson.dump({{'score': {value}}}, open('score.json', 'w'))\n"


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=160)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG (stdlib only), standing in for a plot."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def worked_repo(repo: Path, tmp_path: Path) -> Path:
    """FEAT-B failed once (score 0.2), then passed (0.9), through the replay agent."""
    (repo / "PRD.json").write_text(json.dumps(PLAN))
    (repo / ".gitignore").write_text(".ralph/\nscore.json\n")
    (repo / "experiments" / "step1").mkdir(parents=True)
    (repo / "experiments" / "step1" / "curve.png").write_bytes(png(60, 30, (200, 30, 30)))
    (repo / "experiments" / "step1" / "README.md").write_text("# step 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"features": {"FEAT-B": [
        [{"write": "score.py", "content": score_script(0.2)}, {"run": "python score.py"}, {"say": "wrote score.py"}],
        [{"write": "score.py", "content": score_script(0.9)}, {"say": "raised the score"}]]}}))
    result = ralph("run", "--agent", "replay", "--agent-cmd", script, "--no-input", "-C", repo)
    assert result.exit_code == 3, result.output
    return repo


def test_show_renders_an_attempt_with_its_tools_checks_and_verdict(worked_repo: Path) -> None:
    first = ralph("show", "FEAT-B", "--attempt", "1", "-C", worked_repo)
    assert first.exit_code == 0, first.output
    out = first.output
    assert "FEAT-B attempt 1" in out and "# Feature FEAT-B: score well" in out  # the prompt
    assert "turn 1" in out and '"write": "score.py"' in out and "turn 2" in out  # tool calls
    assert "scoring" in out  # a tool call's output
    assert "checks and verdict: failing" in out and "score gate" in out and "0.2" in out
    latest = ralph("show", "FEAT-B", "-C", worked_repo).output
    assert "FEAT-B attempt 2" in latest and "checks and verdict: passing" in latest
    missing = ralph("show", "FEAT-B", "--attempt", "7", "-C", worked_repo)
    assert missing.exit_code == 2 and "no attempt 7; recorded: 1, 2" in missing.output


def test_show_renders_the_anthropic_transcript_shape(tmp_path: Path) -> None:
    record = AttemptRecord(feature="F", number=1, run_dir=tmp_path, prompt="SYSTEM\n---\nPROMPT", repo=tmp_path,
                           transcript=[
        {"type": "start", "agent": "anthropic", "model": "claude-x"},
        {"type": "turn", "turn": 1, "usage": {"input_tokens": 10, "output_tokens": 5},
         "content": [{"type": "text", "text": "I will run the tests"},
                     {"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "pytest -q"}}],
         "tool_results": [{"type": "tool_result", "tool_use_id": "t1", "content": "1 failed", "is_error": False}]},
        {"type": "end", "status": "completed", "turns": 1, "usage": {"cost_usd": 0.0123}},
        "a plain line from an agent CLI"])
    console = Console(width=120, record=True, file=open("/dev/null", "w"))
    console.print(render_attempt(record))
    text = console.export_text()
    for expected in ("agent anthropic claude-x", "turn 1  (15 tokens)", "I will run the tests", "$ pytest -q",
                     "1 failed", "agent ended: completed after 1 turn(s), $0.0123", "a plain line from an agent CLI",
                     "no progress.txt entry"):
        assert expected in text, expected


def test_report_page_holds_the_plan_evidence_links_and_plots(worked_repo: Path) -> None:
    result = ralph("report", "-C", worked_repo)
    assert result.exit_code == 0, result.output
    page = worked_repo / ".ralph" / "report" / "index.html"
    text = page.read_text()
    for expected in ("results-test", "Phase 1: Build", "FEAT-B: score well", "score = 0.9", "score gate",
                     "experiments/step1/curve.png", "data:image/png;base64,", "2 attempt(s)"):
        assert expected in text, expected
    links = [h for h in text.split('href="')[1:]]
    targets = [h.split('"', 1)[0] for h in links if not h.startswith("#")]
    assert any(t.endswith("transcript.jsonl") for t in targets)
    assert "../../experiments/step1/curve.png" in targets  # a plot opens at full size
    for target in targets:  # every link resolves from the page's folder: it works with no server
        assert (page.parent / target).resolve().exists(), target


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make setup` installs Debian's "
                                              "`chromium` where apt-get exists); the screenshot test needs it")
def test_report_renders_in_headless_chromium(worked_repo: Path, tmp_path: Path) -> None:
    assert ralph("report", "--out", tmp_path / "page" / "report.html", "-C", worked_repo).exit_code == 0
    url = (tmp_path / "page" / "report.html").resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "FEAT-B: score well" in dom and "passing" in dom and "awaiting approval" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1000,4000", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (1000, 4000)
    image = pytest.importorskip("matplotlib.image").imread(shot)
    pixels = {tuple((p[:3] * 255).round().astype(int)) for row in image[::4] for p in row[::4]}
    assert (26, 127, 55) in pixels  # the green "passing" badge was painted
    assert (200, 30, 30) in pixels  # and the embedded plot
