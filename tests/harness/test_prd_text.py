"""Issue 24 (minor): ralph's first write rewrote a hand-formatted PRD.json whole; it now changes only the `passes`
values (plan/prdtext.py), and a user's uncommitted edit to the plan is committed as theirs, not in the agent's
commit (test_judge_loop.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.plan.prdtext import Unreadable, with_passes

HAND = r'''{ "version": 1, "project": "x",
  "phases": [ {"id": 1, "name": "a"} ],

  "features": [
    { "id": "F1",  "phase": 1,   "verify": [ {"name": "t", "run": "echo \"}\" , 1"} ], "passes": false },
    {"id":"F2","phase":1,"title":"caf\u00e9 \"q\" ]"}
    , { "id": "F3", "phase": 1, "passes": true }
  ]
}
'''


def test_only_the_passes_values_change() -> None:
    out = with_passes(HAND, {"F1": True, "F2": True, "F3": False})
    assert json.loads(out)["features"] == [
        {"id": "F1", "phase": 1, "verify": [{"name": "t", "run": 'echo "}" , 1'}], "passes": True},
        {"id": "F2", "phase": 1, "title": 'café "q" ]', "passes": True},
        {"id": "F3", "phase": 1, "passes": False}]
    assert out == (HAND.replace('"passes": false }', '"passes": true }')
                   .replace('"title":"caf\\u00e9 \\"q\\" ]"}', '"title":"caf\\u00e9 \\"q\\" ]", "passes": true}')
                   .replace('"passes": true }\n  ]', '"passes": false }\n  ]'))
    assert with_passes(HAND, {"nobody": True}) == HAND


@pytest.mark.parametrize("text", ["[1]", '{"features": 3}', '{"features": [1, }', "{"])
def test_what_cannot_be_walked_is_said(text: str) -> None:
    with pytest.raises(Unreadable):
        with_passes(text, {"F1": True})


def test_a_verification_keeps_the_authors_formatting(prd_repo: Path) -> None:
    """`ralph verify` records passes in a plan laid out by its author (four spaces, a blank line): the rest stays."""
    from typer.testing import CliRunner

    from harness.cli import app

    plan = json.loads((prd_repo / "PRD.json").read_text())
    text = json.dumps(plan, indent=4).replace('    "features"', '\n    "features"')  # the author's layout
    (prd_repo / "PRD.json").write_text(text)
    result = CliRunner().invoke(app, ["verify", "FEAT-1", "-C", str(prd_repo)])
    assert result.exit_code == 0, result.output
    after = (prd_repo / "PRD.json").read_text()
    assert json.loads(after)["features"][0]["passes"] is True
    assert after.replace(', "passes": true', "", 1) == text  # FEAT-1 had no passes key: one was added, nothing else
