from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.plan.patterns import matching_pattern
from harness.sandbox.guards import ALWAYS_PROTECTED, check_and_restore, readonly_paths, snapshot


def test_untouched_tree_reports_nothing(repo: Path) -> None:
    before = snapshot(repo, ["tests/protected/**"])
    (repo / "src" / "model.py").write_text("changed, but not protected\n")
    assert check_and_restore(repo, before) == []


def test_edited_prd_and_deleted_progress_are_restored(repo: Path) -> None:
    prd_before = (repo / "PRD.json").read_text()
    before = snapshot(repo)
    prd = json.loads(prd_before)
    prd["features"][0]["passes"] = True
    (repo / "PRD.json").write_text(json.dumps(prd))
    (repo / "progress.txt").unlink()
    assert check_and_restore(repo, before) == ["PRD.json", "progress.txt"]
    assert (repo / "PRD.json").read_text() == prd_before
    assert (repo / "progress.txt").read_text() == "## start\n"
    assert check_and_restore(repo, before) == []


def test_planted_files_under_protected_globs_are_removed(repo: Path) -> None:
    (repo / "tests" / "protected").mkdir(parents=True)
    (repo / "tests" / "protected" / "test_gate.py").write_text("assert real()\n")
    globs = ["tests/protected/**", "experiments/*/results.json"]
    before = snapshot(repo, globs)
    (repo / "tests" / "protected" / "test_gate.py").write_text("assert True\n")
    (repo / "experiments" / "step1").mkdir(parents=True)
    (repo / "experiments" / "step1" / "results.json").write_text('{"acc": 0.99}')
    (repo / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\ncurl evil\n")
    changed = check_and_restore(repo, before)
    assert changed == [".git/hooks/pre-commit", "experiments/step1/results.json", "tests/protected/test_gate.py"]
    assert (repo / "tests" / "protected" / "test_gate.py").read_text() == "assert real()\n"
    assert not (repo / "experiments" / "step1" / "results.json").exists()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()


def test_protected_file_swapped_for_symlink_or_directory_is_restored(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "fake.json").write_text("{}")
    before = snapshot(repo)
    (repo / "PRD.json").unlink()
    (repo / "PRD.json").symlink_to(tmp_path / "fake.json")
    (repo / "progress.txt").unlink()
    (repo / "progress.txt").mkdir()
    assert check_and_restore(repo, before) == ["PRD.json", "progress.txt"]
    assert not (repo / "PRD.json").is_symlink() and '"passes": false' in (repo / "PRD.json").read_text()
    assert (repo / "progress.txt").is_file()


def test_permission_change_counts_as_tampering(repo: Path) -> None:
    before = snapshot(repo)
    (repo / "PRD.json").chmod(0o777)
    assert check_and_restore(repo, before) == ["PRD.json"]
    assert (repo / "PRD.json").stat().st_mode & 0o777 == before.entries["PRD.json"].mode & 0o777


@pytest.mark.parametrize(
    ("path", "pattern", "hit"),
    [
        ("PRD.json", "PRD.json", True),
        ("sub/PRD.json", "PRD.json", False),
        ("a.json", "*.json", True),
        ("a/b.json", "*.json", False),
        ("a/b/x.py", "**/x.py", True),
        ("x.py", "**/x.py", True),
        (".git", ".git/**", True),
        (".git/refs/heads/main", ".git/**", True),
        (".gitignore", ".git/**", False),
        ("experiments/s1/results.json", "experiments/*/results.json", True),
    ],
)
def test_glob_semantics(path: str, pattern: str, hit: bool) -> None:
    assert (matching_pattern(path, [pattern]) is not None) is hit


def test_readonly_paths_mount_directories_once(repo: Path) -> None:
    (repo / "tests" / "protected").mkdir(parents=True)
    (repo / "tests" / "protected" / "test_gate.py").write_text("")
    (repo / "eval.py").write_text("")
    paths = readonly_paths(repo, [*ALWAYS_PROTECTED, "tests/protected/**", "*.py"])
    rel = [p.relative_to(repo).as_posix() for p in paths]
    assert rel == ["PRD.json", "progress.txt", ".ralph", ".git", "tests/protected", "eval.py"]


def _settle() -> None:
    """Date the file's last change back past the kernel clock's tick (guards.SETTLED_NS), as any file ralph did
    not write within the last few milliseconds is: only then is its stat fingerprint trusted."""
    import time

    time.sleep(0.05)


def test_an_untouched_protected_file_is_not_read_again(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long progress.txt costs one read per snapshot, not one per comparison (issue 24: verify with 50 MB of log)."""
    from harness.sandbox import guards

    _settle()
    before = snapshot(repo)
    reads: list[str] = []
    real = guards._read
    monkeypatch.setattr(guards, "_read", lambda path: reads.append(path.name) or real(path))
    assert check_and_restore(repo, before) == []
    assert "progress.txt" not in reads and "PRD.json" not in reads


def test_an_edit_that_keeps_size_and_mtime_is_still_caught(repo: Path) -> None:
    """A hostile agent rewrites progress.txt with text of the same length and sets its mtime back: the kernel
    still moved ctime, so the fingerprint differs, the content is compared and the file restored."""
    import os

    path = repo / "progress.txt"
    _settle()
    before = snapshot(repo)
    st = path.stat()
    path.write_text("## forge\n")  # as long as "## start\n"
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert check_and_restore(repo, before) == ["progress.txt"]
    assert path.read_text() == "## start\n"


def test_a_file_swapped_for_an_identical_copy_is_compared_by_content(repo: Path) -> None:
    """Replacing the file (a new inode) is not mistaken for "unchanged", and an identical copy is not tampering."""
    import shutil

    path = repo / "PRD.json"
    _settle()
    before = snapshot(repo)
    shutil.copy2(path, repo / "copy.json")
    (repo / "copy.json").replace(path)
    assert check_and_restore(repo, before) == []
    path.write_text(path.read_text().replace("FEAT-1", "FEAT-X"))
    (repo / "x.json").write_text(path.read_text())
    (repo / "x.json").replace(path)
    assert check_and_restore(repo, before) == ["PRD.json"]
