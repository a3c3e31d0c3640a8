from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.agents.tools import EDITOR, Workspace
from tests.fakes.cli_agents import alive


def edit(ws: Workspace, **params: object):
    return ws.run_tool(EDITOR, params)


def test_editor_create_view_replace_insert(repo: Path) -> None:
    ws = Workspace(repo)
    assert not edit(ws, command="create", path="pkg/a.py", file_text="x = 1\ny = 2\n").is_error
    assert edit(ws, command="view", path="pkg/a.py").text == "     1\tx = 1\n     2\ty = 2"
    out = edit(ws, command="str_replace", path="pkg/a.py", old_str="y = 2", new_str="y = 3")
    assert not out.is_error and "line 2" in out.text
    assert not edit(ws, command="insert", path="pkg/a.py", insert_line=1, insert_text="# note").is_error
    assert (repo / "pkg" / "a.py").read_text() == "x = 1\n# note\ny = 3\n"
    assert edit(ws, command="view", path="pkg/a.py", view_range=[2, -1]).text == "     2\t# note\n     3\ty = 3"
    listing = edit(ws, command="view", path=".").text
    assert "pkg/a.py" in listing and "src/model.py" in listing and ".git" not in listing


def test_str_replace_needs_exactly_one_match(repo: Path) -> None:
    ws = Workspace(repo)
    (repo / "dup.py").write_text("a = 1\nb = 2\na = 1\n")
    twice = edit(ws, command="str_replace", path="dup.py", old_str="a = 1", new_str="a = 9")
    assert twice.is_error and "2 times" in twice.text and "lines 1, 3" in twice.text
    missing = edit(ws, command="str_replace", path="dup.py", old_str="zzz", new_str="")
    assert missing.is_error and "not found" in missing.text
    assert (repo / "dup.py").read_text() == "a = 1\nb = 2\na = 1\n"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../escape.txt", "outside the repository"),
        ("/etc/escape.txt", "outside the repository"),
        ("out/escape.txt", "outside the repository"),  # `out` is a symlink to a directory outside
        ("PRD.json", "protected"),
        ("prd_link", "protected"),  # a symlink to PRD.json
        ("progress.txt", "protected"),
        (".git/config", "protected"),
        (".ralph/state.json", "protected"),
        ("tests/protected/test_gate.py", "protected"),
    ],
)
def test_writes_outside_or_to_protected_paths_are_refused(repo: Path, tmp_path: Path, path: str, why: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "out").symlink_to(outside)
    (repo / "prd_link").symlink_to(repo / "PRD.json")
    prd = (repo / "PRD.json").read_text()
    ws = Workspace(repo, protected=["tests/protected/**"])
    out = edit(ws, command="create", path=path, file_text="tampered\n")
    assert out.is_error and why in out.text
    assert (repo / "PRD.json").read_text() == prd
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape.txt").exists()
    assert not (repo / "tests" / "protected").exists() and not (repo / ".ralph").exists()


def test_protected_files_stay_readable(repo: Path) -> None:
    out = edit(Workspace(repo), command="view", path="PRD.json")
    assert not out.is_error and '"passes": false' in out.text


def test_bad_tool_input_is_an_error_string(repo: Path) -> None:
    ws = Workspace(repo)
    assert "unknown tool" in ws.run_tool("browser", {}).text
    assert "unknown editor command" in edit(ws, command="undo_edit", path="a").text
    assert "does not exist" in edit(ws, command="str_replace", path="nope.py", old_str="a").text
    assert "non-empty 'command'" in ws.run_tool("bash", {}).text


def test_bash_runs_in_repo_without_secrets(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SERVICE_API_KEY", "s3cret")
    monkeypatch.setenv("HF_TOKEN", "hf-s3cret")
    out = Workspace(repo).bash("pwd; echo ${FAKE_SERVICE_API_KEY:-unset} ${HF_TOKEN:-unset}; exit 3")
    assert out.text == f"{repo.resolve()}\nunset unset\n[exit code 3]"
    allowed = Workspace(repo, env_allow=["HF_TOKEN"]).bash("echo ${HF_TOKEN:-unset}")
    assert allowed.text.startswith("hf-s3cret")


def test_bash_output_keeps_head_and_tail(repo: Path) -> None:
    out = Workspace(repo, max_output_chars=1000).bash("seq 1 20000")
    assert out.text.startswith("1\n2\n3\n")
    assert out.text.endswith("19999\n20000\n[exit code 0]")
    assert "characters omitted" in out.text and len(out.text) < 1200


def test_bash_timeout_kills_the_process_group(repo: Path) -> None:
    start = time.monotonic()
    out = Workspace(repo).bash("sleep 300 & echo $! > bg.pid; wait", timeout_s=0.5)
    assert out.is_error and "timed out" in out.text
    assert time.monotonic() - start < 5
    assert not alive(int((repo / "bg.pid").read_text()))


def test_os_errors_come_back_as_tool_errors(repo: Path) -> None:
    out = edit(Workspace(repo), command="create", path="src/model.py/inner.py", file_text="x\n")
    assert out.is_error and out.text.startswith("Error: ") and "model.py" in out.text
    assert (repo / "src" / "model.py").read_text() == "def f():\n    return 1\n"
