"""Small executable stand-ins for agent CLIs, written into a test's tmp dir.

Each function writes one script and returns a shell command for CommandAgent's template. The
scripts run in the attempt's working directory (the repository) and read the prompt from stdin
unless a prompt file path is given as their first argument.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from textwrap import dedent


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie that nobody reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _write(directory: Path, name: str, body: str) -> str:
    path = Path(directory) / name
    path.write_text(f"#!{sys.executable}\n" + dedent(body).lstrip())
    path.chmod(0o755)
    return shlex.quote(str(path))


_READ_PROMPT = """
    import sys
    prompt = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
"""


def worker(directory: Path, filename: str = "work.txt") -> str:
    """Writes `filename` with the prompt's first line, prints what it did, exits 0."""
    return _write(
        directory,
        "worker",
        _READ_PROMPT
        + f"""
    from pathlib import Path
    Path({filename!r}).write_text(prompt.splitlines()[0] + "\\n")
    print("wrote {filename}")
    """,
    )


def hanger(directory: Path, pid_file: Path) -> str:
    """Starts a grandchild `sleep`, records its pid in `pid_file`, then sleeps forever."""
    return _write(
        directory,
        "hanger",
        f"""
    import subprocess, time
    child = subprocess.Popen(["sleep", "300"])
    open({str(pid_file)!r}, "w").write(str(child.pid))
    print("working...", flush=True)
    time.sleep(300)
    """,
    )


def prd_tamperer(directory: Path) -> str:
    """Sets `passes: true` on every feature in ./PRD.json and claims success."""
    return _write(
        directory,
        "tamperer",
        """
    import json
    prd = json.load(open("PRD.json"))
    for feature in prd.get("features", []):
        feature["passes"] = True
    json.dump(prd, open("PRD.json", "w"))
    print("all features pass now")
    """,
    )


def outside_writer(directory: Path, target: Path) -> str:
    """Tries to write `target` (outside the repository); reports whether it could."""
    return _write(
        directory,
        "outside",
        f"""
    try:
        open({str(target)!r}, "w").write("escaped\\n")
        print("wrote outside")
    except OSError as exc:
        print("refused:", exc)
    """,
    )


def failer(directory: Path, code: int = 3) -> str:
    """Prints an error to stderr and exits with `code`."""
    return _write(
        directory,
        "failer",
        f"""
    import sys
    print("fatal: could not reach the model", file=sys.stderr)
    sys.exit({code})
    """,
    )


def claude_json(directory: Path, report: dict, filename: str | None = None) -> str:
    """Prints a log line then `report` as one JSON line (like `claude -p --output-format json`)."""
    work = f"open({filename!r}, 'w').write('done\\n')" if filename else "pass"
    return _write(
        directory,
        "claude_json",
        _READ_PROMPT
        + f"""
    import json
    {work}
    print("starting session", file=sys.stderr)
    print(json.dumps({report!r}))
    """,
    )


def claude_outage(directory: Path, message: str, *, outages: int | None = None, filename: str = "work.txt") -> str:
    """Claude Code with its API unreachable: a ~1.5 KB JSON report (`is_error`, `result` = `message`) and
    exit 1, like `claude -p --output-format json` after its own retries. With `outages`, only the first
    that many calls fail; later ones write `filename` and report success."""
    return _write(
        directory,
        "claude_outage",
        _READ_PROMPT
        + f"""
    import json, pathlib
    calls = pathlib.Path({str(Path(directory) / "claude_outage.calls")!r})
    n = int(calls.read_text()) + 1 if calls.exists() else 1
    calls.write_text(str(n))
    if {outages!r} is None or n <= {outages!r}:
        print(json.dumps({{"type": "result", "subtype": "success", "is_error": True, "duration_ms": 197000,
                          "duration_api_ms": 0, "num_turns": 1, "result": {message!r}, "stop_reason": "stop_sequence",
                          "session_id": "5f0c" * 9, "total_cost_usd": 0, "usage": {{"input_tokens": 0,
                          "output_tokens": 0, "server_tool_use": {{"web_search_requests": 0}}, "service_tier":
                          "standard", "cache_creation": {{"ephemeral_1h_input_tokens": 0}}}},
                          "modelUsage": {{}}, "permission_denials": [], "uuid": "9" * 36,
                          "padding": "x" * 900}}))
        sys.exit(1)
    open({filename!r}, "w").write("done\\n")
    print(json.dumps({{"type": "result", "subtype": "success", "is_error": False, "num_turns": 2,
                      "result": "wrote it", "total_cost_usd": 0.01, "usage": {{"input_tokens": 10, "output_tokens": 5}}}}))
    """,
    )
