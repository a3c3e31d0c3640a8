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
