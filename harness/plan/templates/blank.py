"""`ralph init --template blank`: one phase, no features yet."""

from __future__ import annotations

from harness.plan.prd import PRD, parse_prd


def blank(project: str) -> PRD:
    return parse_prd(
        {
            "version": 1,
            "project": project,
            "description": "Describe the goal. Add features with checks that decide when each is done (docs/prd.md).",
            "defaults": {"max_attempts": 3, "attempt_timeout_s": 3600, "check_timeout_s": 900},
            "phases": [{"id": 1, "name": "First phase", "goal": "What this phase must establish.", "approval": True}],
            "features": [],
        },
        "blank template",
    )
