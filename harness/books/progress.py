"""`progress.txt`: the append-only, harness-written log of what happened, one block per event.

Block format (human-readable; every block starts with a `## ` header line and every free-text
line inside it is indented, so no agent summary can forge a header):

    ## 2026-11-21T08:43:18Z | attempt | FEAT-010 | phase 1
    attempt: 2
    agent: anthropic claude-sonnet-4-5 | turns 14 | tokens 120431 | cost $0.8400 | time 372.0s
    checks:
      - pass    smoke: exit 0 (412.3s)
      - fail    invariance gate: eval.linacc_agg = 0.21, needs >= 0.3
    wandb: 1x2y3z4w (project lab, https://wandb.ai/team/lab/runs/1x2y3z4w)
    commit: 3f2a9c1
    summary:
      the agent's own account (advisory)

Tamper detection. `.ralph/progress.json` holds a running digest of the text ralph wrote: a hash
chain over 64 KiB pieces (`Chain`), its size, and the file's stat fingerprint (inode, size,
mtime, ctime) right after ralph's last write. Checking costs nothing while the fingerprint is
unchanged (the kernel sets ctime on every write, and no unprivileged process can set it back);
otherwise the whole file is re-hashed and compared. An append only hashes the last partial piece
and the new entry, so it costs what the entry costs however long the log is.

Any other change (an edit, a deletion, text someone else appended) raises `ProgressTamperedError`
until a person runs `ralph log --accept-edits`, which is logged itself. A missing record is
treated the same way unless progress.txt is exactly the version committed at HEAD (a fresh clone:
`.ralph/` is never committed), so deleting the record cannot launder an edit.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.books.layout import PROGRESS_CHAIN, PROGRESS_FILE, ralph_dir
from harness.books.records import Evidence, unique
from harness.errors import RalphError
from harness.fileio import atomic_write_text, clip, now_iso

HEADER = (
    "# progress.txt: written by ralph (the harness), append-only.\n"
    "# Edits are detected; accept them with `ralph log --accept-edits`.\n"
)
PIECE = 1 << 16  # bytes per link of the hash chain, and per read when scanning from the end
SUMMARY_MAX = 4_000  # characters of an agent's summary kept in its entry
FIELD_MAX = 4_000  # characters per `key: value` line


class ProgressTamperedError(RalphError):
    """progress.txt differs from what the harness wrote."""


@dataclass
class LogEntry:
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
        lines += [f"wandb: {_one_line(run.describe())}" for run in unique(r for e in self.checks for r in e.wandb)]
        if self.commit:
            lines.append(f"commit: {self.commit}")
        if self.summary.strip():
            lines.append("summary:")
            lines += ["  " + line for line in clip(self.summary.strip(), SUMMARY_MAX).splitlines()]
        return "\n".join(lines) + "\n\n"


def _one_line(text: str) -> str:
    flat = " ".join(str(text)[: 2 * FIELD_MAX].split())
    return flat if len(flat) <= FIELD_MAX else flat[: FIELD_MAX - 1] + "…"


@dataclass(frozen=True)
class Chain:
    """Digest of a byte stream that can be extended without re-reading it: `head` chains the
    sha256 of every full `PIECE`, `tail` holds the bytes after the last full piece."""

    size: int = 0
    head: bytes = hashlib.sha256(b"ralph progress.txt chain v2").digest()
    tail: bytes = b""

    def extended(self, data: bytes) -> Chain:
        buf = self.tail + data
        cut = len(buf) - len(buf) % PIECE
        head = self.head
        for i in range(0, cut, PIECE):
            head = hashlib.sha256(head + buf[i : i + PIECE]).digest()
        return Chain(self.size + len(data), head, buf[cut:])

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.head + self.tail + self.size.to_bytes(8, "big")).hexdigest()

    @property
    def head_offset(self) -> int:
        return self.size - len(self.tail)

    def record(self) -> dict:
        return {"size": self.size, "head": self.head.hex(), "digest": self.digest}


def _fingerprint(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class ProgressLog:
    """Append-only access to `<repo>/progress.txt` with tamper detection."""

    def __init__(self, repo: Path | str):
        self.path = Path(repo) / PROGRESS_FILE
        self.record_path = ralph_dir(repo) / PROGRESS_CHAIN

    # ---- the record

    def _record(self) -> dict | None:
        try:
            rec = json.loads(self.record_path.read_text(encoding="utf-8"))
            if not isinstance(rec, dict) or not isinstance(rec.get("size"), int):
                raise ValueError("not a ralph progress record")
            return rec
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as e:
            raise ProgressTamperedError(
                f"{self.record_path} (ralph's hash of progress.txt) is unreadable: {e}. "
                "Run `ralph log --accept-edits` to re-record the current progress.txt."
            ) from None

    def _write_record(self, chain: Chain, pending: Chain | None = None) -> None:
        rec: dict = {"version": 2, **chain.record()}
        if pending is not None:  # an append is under way: a crash may leave either size behind
            rec["pending"] = pending.record()
        else:
            try:
                rec["stat"] = _fingerprint(self.path.stat())
            except FileNotFoundError:
                pass
        atomic_write_text(self.record_path, json.dumps(rec) + "\n")

    # ---- reading the file

    def _stat(self) -> os.stat_result | None:
        try:
            return self.path.stat()
        except FileNotFoundError:
            return None

    def _scan(self, limit: int | None = None) -> Chain:
        """The chain of the file's first `limit` bytes (all of it by default), reading it in pieces."""
        chain = Chain()
        with open(self.path, "rb") as f:
            while limit is None or chain.size < limit:
                block = f.read(PIECE if limit is None else min(PIECE, limit - chain.size))
                if not block:
                    break
                chain = chain.extended(block)
        return chain

    def _legacy_sha256(self, limit: int) -> str:
        """Digest used by records written before the chain (version 1): sha256 of the first bytes."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            h.update(f.read(limit))
        return h.hexdigest()

    def _resume(self, part: dict) -> Chain | None:
        """The chain a version-2 record (or its pending part) describes, if the file still ends the
        way it did: its last partial piece is re-read and must reproduce the recorded digest."""
        try:
            head = bytes.fromhex(part["head"])
            size = int(part["size"])
        except (KeyError, ValueError, TypeError):
            return None
        with open(self.path, "rb") as f:
            f.seek(size - size % PIECE)
            chain = Chain(size, head, f.read(size % PIECE))
        return chain if len(chain.tail) == size % PIECE and chain.digest == part.get("digest") else None

    def _matches_commit(self) -> bool:
        """progress.txt is byte for byte the version committed at HEAD (e.g. in a fresh clone)."""
        import git  # here: GitPython is slow to import, and only a fresh clone's first write needs it

        try:
            repo = git.Repo(self.path.parent)
            rel = self.path.resolve().relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
            committed = repo.git.rev_parse("--verify", "--quiet", f"HEAD:{rel}")
            return committed == repo.git.hash_object("--no-filters", "--", str(self.path))
        except (git.GitCommandError, git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError, TypeError):
            return False

    # ---- integrity

    def _current(self) -> tuple[Chain | None, str | None]:
        """(the chain of progress.txt as ralph left it, None) or (None, what is wrong with it)."""
        rec, st = self._record(), self._stat()
        if st is None:
            return (None, "progress.txt was deleted") if rec is not None else (Chain(), None)
        if rec is None:
            if self._matches_commit():
                return self._scan(), None
            return None, ("ralph's record of progress.txt (.ralph/progress.json) is missing and progress.txt is not "
                          "the version committed at HEAD, so an edit cannot be ruled out")
        if rec.get("version") == 2:
            for part in ([rec] if rec.get("stat") == _fingerprint(st) else []):  # untouched since ralph wrote it
                chain = self._resume(part)
                if chain is not None:
                    return chain, None
            for part in [rec] + ([rec["pending"]] if isinstance(rec.get("pending"), dict) else []):
                if st.st_size == part.get("size"):
                    chain = self._scan()
                    if chain.digest == part.get("digest"):
                        return chain, None
            size_ok = st.st_size > rec["size"] and self._scan(rec["size"]).digest == rec.get("digest")
        else:  # version 1: {"size", "sha256", "pending"}
            known = [rec] + ([rec["pending"]] if isinstance(rec.get("pending"), dict) else [])
            if any(st.st_size == r.get("size") and self._legacy_sha256(st.st_size) == r.get("sha256") for r in known):
                return self._scan(), None
            size_ok = st.st_size > rec["size"] and self._legacy_sha256(rec["size"]) == rec.get("sha256")
        if size_ok:
            return None, f"{st.st_size - rec['size']} bytes were added after ralph's last entry by something other than ralph"
        if st.st_size < rec["size"]:
            return None, (f"progress.txt is shorter than ralph left it ({st.st_size} of {rec['size']} bytes): "
                          "text was removed")
        return None, "earlier text in progress.txt was edited"

    def problem(self) -> str | None:
        """A description of how progress.txt differs from what ralph wrote, or None if it does not."""
        return self._current()[1]

    def _intact_chain(self) -> Chain:
        chain, problem = self._current()
        if problem:
            raise ProgressTamperedError(
                f"{problem}. ralph only appends to the text it wrote, so it will not write to progress.txt "
                "until a person reviews the change (e.g. `git diff progress.txt`) and accepts it with "
                "`ralph log --accept-edits`."
            )
        assert chain is not None
        return chain

    def audit(self) -> None:
        """Raise `ProgressTamperedError` if progress.txt was changed outside ralph."""
        self._intact_chain()

    # ---- writing

    def append(self, entry: LogEntry) -> None:
        """Append one block (creating the file with its header if needed) and record the new digest."""
        self._extend(self._intact_chain(), entry)

    def _extend(self, chain: Chain, entry: LogEntry) -> None:
        lead = (HEADER + "\n") if chain.size == 0 else ("" if self._last_byte(chain) == b"\n" else "\n")
        chunk = lead.encode() + entry.render().encode()
        new = chain.extended(chunk)
        self._write_record(chain, pending=new)
        with open(self.path, "ab") as f:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        self._write_record(new)

    def _last_byte(self, chain: Chain) -> bytes:
        if chain.tail:
            return chain.tail[-1:]
        with open(self.path, "rb") as f:
            f.seek(chain.size - 1)
            return f.read(1)

    def accept_edits(self, by: str) -> str | None:
        """Take the current progress.txt as the new baseline and log that; returns what was accepted."""
        problem = self.problem()
        chain = self._scan() if self._stat() is not None else Chain()
        self._write_record(chain)
        self._extend(chain, LogEntry(kind="accept-edits", subject="progress.txt", fields={
            "by": by, "accepted": problem or "no change was pending"}))
        return problem

    # ---- reading

    def blocks(self) -> list[str]:
        """Every block (header line included), oldest first; text before the first block is skipped."""
        try:
            return _split_blocks(self.path.read_bytes().decode("utf-8", "replace"))
        except FileNotFoundError:
            return []

    def _last_blocks(self, n: int) -> list[str]:
        """The last `n` blocks, read from the end of the file (a prompt never parses the whole log)."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return []
        with f:
            pos, buf, step = f.seek(0, os.SEEK_END), b"", 4096
            while (start := _nth_last_header(buf, n, pos == 0)) is None and pos > 0:
                step = min(2 * step, PIECE, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
        return _split_blocks(buf[start or 0 :].decode("utf-8", "replace"))[-n:]

    def tail(self, n: int = 5, max_chars: int | None = None) -> str:
        """The last `n` blocks, dropping the oldest of them until they fit in `max_chars` (for prompts)."""
        picked = self._last_blocks(n) if n > 0 else []
        while max_chars is not None and len(picked) > 1 and sum(map(len, picked)) + len(picked) > max_chars:
            picked.pop(0)
        text = "\n".join(picked)
        return text[-max_chars:] if max_chars is not None else text


def _nth_last_header(buf: bytes, n: int, at_file_start: bool) -> int | None:
    """Offset in `buf` of the `n`-th last block header, or None when `buf` does not reach back that far
    (at the start of the file: the first header, if any, or the end of `buf`)."""
    at = len(buf)
    for _ in range(n):
        found = buf.rfind(b"\n## ", 0, at)
        if found < 0:
            if not at_file_start:
                return None
            return 0 if buf.startswith(b"## ") else at
        at = found
    return at + 1


def _split_blocks(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            out.append(line)
        elif out:
            out[-1] += line
    return [b.rstrip("\n") + "\n" for b in out]
