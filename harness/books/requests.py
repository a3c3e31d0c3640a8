"""Approval requests: the file a run leaves in `.ralph/approvals/` when a phase waits for a person.

Kept apart from run/approval.py (the decisions, which run the exit checks) so that `ralph status` reads
them without loading the judge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.books.git.repo import head_sha
from harness.books.layout import APPROVALS, ralph_dir
from harness.fileio import atomic_write_text, now_iso
from harness.plan.prd import Phase


def request_path(repo: Path | str, phase_id: int) -> Path:
    return ralph_dir(repo) / APPROVALS / f"phase-{phase_id}.request.json"


def write_request(repo: Path | str, phase: Phase, summary: str, details: dict[str, Any] | None = None) -> Path:
    """Write `.ralph/approvals/phase-N.request.json` for a person to act on; returns its path."""
    path = request_path(repo, phase.id)
    body = {
        "phase": phase.id,
        "name": phase.name,
        "goal": phase.goal,
        "requested_at": now_iso(),
        "commit": head_sha(repo),
        "summary": summary,
        "approve": f"ralph approve {phase.id} --by NAME [--note TEXT]",
        "reject": f"ralph reject {phase.id} --reason TEXT",
        **(details or {}),
    }
    atomic_write_text(path, json.dumps(body, indent=2) + "\n")
    return path


def pending_request(repo: Path | str, phase_id: int) -> dict[str, Any] | None:
    path = request_path(repo, phase_id)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
