"""Ledger (state.json, lock) and progress.txt."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.books.ledger import Decision, Ledger, LedgerError, RepoLock, RepoLockedError
from harness.books.progress import LogEntry, ProgressLog, ProgressTamperedError
from harness.books.records import Evidence
from harness.fileio import atomic_write_text


def ev(name: str, verdict: str = "pass", **figures: float) -> Evidence:
    return Evidence(check=name, kind="metric" if figures else "run", verdict=verdict, detail="d", figures=figures,
                    duration_s=0.1)


def test_ledger_statuses_persist(tmp_path: Path):
    led = Ledger(tmp_path)
    assert led.feature("F").status == "pending"
    assert led.begin_attempt("F") == 1 and led.begin_attempt("F") == 2
    assert led.record_verification("F", [ev("a"), ev("b", "fail")], commit=None) == "failing"
    led.mark_blocked("F", "same failure twice")
    assert led.record_verification("F", [ev("a", "fail")], commit=None) == "blocked"
    assert led.record_verification("F", [ev("a", acc=0.5)], commit="abc") == "passing"
    led.record_decision(1, Decision(decision="approved", by="ana", note="ok", commit="abc"))
    again = Ledger(tmp_path)
    f = again.feature("F")
    assert (f.status, f.attempts, f.verified_commit, f.blocked_reason) == ("passing", 2, "abc", None)
    assert f.last_evidence[0].figures == {"acc": 0.5}
    assert again.phase(1).approved and again.phase(1).decision.by == "ana"
    assert again.record_verification("G", [], commit=None) == "failing"  # no checks never passes


def test_crash_mid_write_leaves_old_state_readable(tmp_path: Path, monkeypatch):
    led = Ledger(tmp_path)
    led.begin_attempt("F")
    before = led.path.read_text()

    def crash(*_a, **_k):
        raise KeyboardInterrupt  # killed between writing the temp file and renaming it

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        led.begin_attempt("F")
    assert led.path.read_text() == before
    assert [p.name for p in led.path.parent.iterdir()] == ["state.json"]  # no temp file left behind
    monkeypatch.undo()
    assert Ledger(tmp_path).feature("F").attempts == 1


def test_corrupt_state_is_a_clear_error(tmp_path: Path):
    atomic_write_text(tmp_path / ".ralph" / "state.json", '{"features": {"F": {"status": "done"}}}')
    with pytest.raises(LedgerError, match=r"features\.F\.status"):
        Ledger(tmp_path)


HOLD = "import sys, time; from harness.books.ledger import RepoLock\nwith RepoLock(sys.argv[1], 'ralph run'):\n" \
       "    print('held', flush=True); time.sleep(60)\n"


@contextlib.contextmanager
def held_elsewhere(repo: Path) -> Iterator[subprocess.Popen]:
    """Another process holding `repo`'s lock, killed (SIGKILL) on the way out."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(repo)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_lock_blocks_a_second_process_and_recovers_after_kill(tmp_path: Path):
    with held_elsewhere(tmp_path) as holder:
        with pytest.raises(RepoLockedError, match=rf"pid {holder.pid} .* `ralph run`"):
            with RepoLock(tmp_path):
                pass
    with RepoLock(tmp_path, "ralph verify"):  # the dead holder's lock is gone
        info = json.loads((tmp_path / ".ralph" / "lock").read_text())
        assert info["pid"] == os.getpid() and info["command"] == "ralph verify"


def test_lock_holds_across_the_worktrees_of_one_repository(tmp_path: Path):
    """Two ralphs in two worktrees share the repository's refs: one's discarded-candidate ref appeared under
    the other's guards, which judged it tampering and deleted it (this repository, issue 22/23 runs). The
    second is refused, naming the first, until the first exits."""
    main, other = tmp_path / "main", tmp_path / "other"
    subprocess.run(["git", "init", "-q", "-b", "main", str(main)], check=True)
    subprocess.run(["git", "-C", str(main), "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q",
                    "--allow-empty", "-m", "start"], check=True)
    subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", "-b", "other", str(other)], check=True)
    with held_elsewhere(main) as holder:
        with pytest.raises(RepoLockedError, match=rf"another worktree of this repository: {main}: pid {holder.pid}"):
            with RepoLock(other):
                pass
        with pytest.raises(RepoLockedError):  # a refusal leaves no lock behind: still refused, not wedged
            with RepoLock(other):
                pass
    with RepoLock(other, "ralph verify"):  # the first is gone
        with pytest.raises(RepoLockedError, match=f"{other}"):  # and now the other way round
            with RepoLock(main):
                pass


def test_progress_blocks_and_tail(tmp_path: Path):
    log = ProgressLog(tmp_path)
    log.append(LogEntry(kind="init", subject="demo"))
    log.append(LogEntry(kind="attempt", subject="FEAT-1", phase=1, fields={"attempt": "1"}, agent="replay",
                     model="script", turns=3, tokens=120, cost_usd=0.01, duration_s=2.5,
                     checks=[ev("gate", "fail", acc=0.2)], commit="abc123", summary="tried\n## fake header"))
    text = log.path.read_text()
    assert text.startswith("# progress.txt")
    assert "agent: replay script | turns 3 | tokens 120 | cost $0.0100 | time 2.5s" in text
    assert "  - fail    gate: d (0.1s)" in text and "commit: abc123" in text
    blocks = log.blocks()
    assert len(blocks) == 2 and "  ## fake header" in blocks[1]  # summaries cannot forge a block
    assert log.tail(1).startswith("## ") and "FEAT-1 | phase 1" in log.tail(1)
    assert log.tail(5, max_chars=200) == log.tail(1)[-200:]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("FEAT-1", "FEAT-9"), "earlier text"),
        (lambda t: t + "agent wrote this\n", "added after ralph's last entry"),
        (lambda t: t[:20], "shorter"),
    ],
)
def test_progress_tampering_is_refused_until_accepted(tmp_path: Path, edit, message):
    log = ProgressLog(tmp_path)
    log.append(LogEntry(kind="verify", subject="FEAT-1"))
    log.path.write_text(edit(log.path.read_text()))
    with pytest.raises(ProgressTamperedError, match=message):
        log.append(LogEntry(kind="verify", subject="FEAT-2"))
    assert "FEAT-2" not in log.path.read_text()
    assert message in log.accept_edits(by="ana")
    log.append(LogEntry(kind="verify", subject="FEAT-2"))
    kinds = [b.split(" | ")[1] for b in log.blocks()]
    assert kinds[-2:] == ["accept-edits", "verify"]


def test_progress_deleted_is_detected(tmp_path: Path):
    log = ProgressLog(tmp_path)
    log.append(LogEntry(kind="init", subject="demo"))
    log.path.unlink()
    assert log.problem() == "progress.txt was deleted"


def test_crash_between_append_and_record_is_not_tampering(tmp_path: Path, monkeypatch):
    log = ProgressLog(tmp_path)
    log.append(LogEntry(kind="init", subject="demo"))
    real = log._write_record
    calls = []

    def dies_on_final_record(data, pending=None):
        calls.append(pending)
        if pending is None:
            raise KeyboardInterrupt
        real(data, pending)

    monkeypatch.setattr(log, "_write_record", dies_on_final_record)
    with pytest.raises(KeyboardInterrupt):
        log.append(LogEntry(kind="verify", subject="FEAT-1"))
    monkeypatch.undo()
    assert ProgressLog(tmp_path).problem() is None
    ProgressLog(tmp_path).append(LogEntry(kind="verify", subject="FEAT-2"))
    assert len(ProgressLog(tmp_path).blocks()) == 3


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.json"
    atomic_write_text(fresh, "{}")
    assert fresh.stat().st_mode & 0o077 != 0  # not the 0600 of a temp file: others may read it
    shared = tmp_path / "shared.json"
    shared.write_text("{}")
    shared.chmod(0o640)
    atomic_write_text(shared, "[]")
    assert shared.stat().st_mode & 0o777 == 0o640 and shared.read_text() == "[]"
