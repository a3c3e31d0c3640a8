"""`progress.txt`: the append-only, harness-written log of what happened, one block per event.

Block format (human-readable; every block starts with a `## ` header line and every free-text
line inside it is indented, so no agent summary can forge a header):

    ## 2026-11-21T08:43:18Z | attempt | FEAT-010 | phase 1
    attempt: 2
    agent: anthropic claude-sonnet-4-5 | turns 14 | tokens 120431 | cost $0.8400 | time 372.0s
    checks:
      - pass    smoke: exit 0 (412.3s)
      - fail    invariance gate: eval.linacc_agg = 0.21, needs >= 0.3
    commit: 3f2a9c1
    summary:
      the agent's own account (advisory)

The harness keeps the size and sha256 of the text it wrote in `.ralph/progress.json`. Before every
append it compares; any other change (an edit, a deletion, text someone else appended) raises
`ProgressTamperedError` until a person runs `ralph log --accept-edits`, which is logged itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.checks import Evidence
from harness.errors import RalphError
from harness.fileio import atomic_write_text, now_iso, sha256_bytes
from harness.ledger import ralph_dir

HEADER = (
    "# progress.txt: written by ralph (the harness), append-only.\n"
    "# Edits are detected; accept them with `ralph log --accept-edits`.\n"
)


class ProgressTamperedError(RalphError):
    """progress.txt differs from what the harness wrote."""


@dataclass
class Entry:
    """One event. `subject` is a feature id or "phase N"; `fields` are extra `key: value` lines."""

    kind: str  # init, verify, attempt, blocked, phase-exit, approval-request, approved, rejected, accept-edits, ...
    subject: str
    phase: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    agent: str | None = None
    model: str | None = None
    turns: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    duration_s: float | None = None
    checks: list[Evidence] = field(default_factory=list)
    commit: str | None = None
    summary: str = ""
    at: str = field(default_factory=now_iso)

    def render(self) -> str:
        head = [self.at, self.kind, self.subject]
        if self.phase is not None and self.subject != f"phase {self.phase}":
            head.append(f"phase {self.phase}")
        lines = ["## " + " | ".join(head)]
        lines += [f"{k}: {_one_line(v)}" for k, v in self.fields.items()]
        usage = [" ".join(x for x in (self.agent, self.model) if x)] if self.agent else []
        if self.turns is not None:
            usage.append(f"turns {self.turns}")
        if self.tokens is not None:
            usage.append(f"tokens {self.tokens}")
        if self.cost_usd is not None:
            usage.append(f"cost ${self.cost_usd:.4f}")
        if self.duration_s is not None:
            usage.append(f"time {self.duration_s:.1f}s")
        if usage:
            lines.append("agent: " + " | ".join(usage))
        if self.checks:
            lines.append("checks:")
            lines += [f"  - {e.verdict:<7} {_one_line(e.check)}: {_one_line(e.detail)} ({e.duration_s:.1f}s)"
                      for e in self.checks]
        if self.commit:
            lines.append(f"commit: {self.commit}")
        if self.summary.strip():
            lines.append("summary:")
            lines += ["  " + line for line in self.summary.strip().splitlines()]
        return "\n".join(lines) + "\n\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class ProgressLog:
    """Append-only access to `<repo>/progress.txt` with tamper detection."""

    def __init__(self, repo: Path | str):
        self.path = Path(repo) / "progress.txt"
        self.record_path = ralph_dir(repo) / "progress.json"

    # ---- integrity

    def _record(self) -> dict | None:
        try:
            return json.loads(self.record_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as e:
            raise ProgressTamperedError(
                f"{self.record_path} (ralph's hash of progress.txt) is unreadable: {e}. "
                "Run `ralph log --accept-edits` to re-record the current progress.txt."
            ) from None

    def _write_record(self, data: bytes, pending: bytes | None = None) -> None:
        rec = {"size": len(data), "sha256": sha256_bytes(data)}
        if pending is not None:
            rec["pending"] = {"size": len(pending), "sha256": sha256_bytes(pending)}
        atomic_write_text(self.record_path, json.dumps(rec) + "\n")

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def problem(self) -> str | None:
        """A description of how progress.txt differs from what ralph wrote, or None if it does not."""
        rec = self._record()
        data = self._read()
        if rec is None:
            return None  # ralph has not written here yet; an existing file is adopted as it is
        if data is None:
            return "progress.txt was deleted"
        known = [rec] + ([rec["pending"]] if rec.get("pending") else [])  # pending: crash mid-append
        if any(len(data) == r["size"] and sha256_bytes(data) == r["sha256"] for r in known):
            return None
        size = rec["size"]
        if len(data) > size and sha256_bytes(data[:size]) == rec["sha256"]:
            return f"{len(data) - size} bytes were added after ralph's last entry by something other than ralph"
        if len(data) < size:
            return f"progress.txt is shorter than ralph left it ({len(data)} of {size} bytes): text was removed"
        return "earlier text in progress.txt was edited"

    def verify(self) -> None:
        """Raise `ProgressTamperedError` if progress.txt was changed outside ralph."""
        problem = self.problem()
        if problem:
            raise ProgressTamperedError(
                f"{problem}. ralph only appends to the text it wrote, so it will not write to progress.txt "
                "until a person reviews the change (e.g. `git diff progress.txt`) and accepts it with "
                "`ralph log --accept-edits`."
            )

    # ---- writing

    def append(self, entry: Entry) -> None:
        """Append one block (creating the file with its header if needed) and record the new hash."""
        self.verify()
        old = self._read()
        lead = (HEADER + "\n") if not old else ("" if old.endswith(b"\n") else "\n")
        chunk = lead.encode() + entry.render().encode()
        new = (old or b"") + chunk
        self._write_record(old or b"", pending=new)
        with open(self.path, "ab") as f:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        self._write_record(new)

    def accept_edits(self, by: str) -> str | None:
        """Take the current progress.txt as the new baseline and log that; returns what was accepted."""
        problem = self.problem()
        data = self._read() or b""
        self._write_record(data)
        self.append(Entry(kind="accept-edits", subject="progress.txt", fields={
            "by": by, "accepted": problem or "no change was pending"}))
        return problem

    # ---- reading

    def blocks(self) -> list[str]:
        """Every block (header line included), oldest first; text before the first block is skipped."""
        text = (self._read() or b"").decode("utf-8", "replace")
        out: list[str] = []
        for line in text.splitlines(keepends=True):
            if line.startswith("## "):
                out.append(line)
            elif out:
                out[-1] += line
        return [b.rstrip("\n") + "\n" for b in out]

    def tail(self, n: int = 5, max_chars: int | None = None) -> str:
        """The last `n` blocks, dropping the oldest of them until they fit in `max_chars` (for prompts)."""
        picked = self.blocks()[-n:] if n > 0 else []
        while max_chars is not None and len(picked) > 1 and sum(map(len, picked)) + len(picked) > max_chars:
            picked.pop(0)
        text = "\n".join(picked)
        return text[-max_chars:] if max_chars is not None else text
