"""`ralph leaderboard FEATURE`: the search's trials as a table (rich), or its JSON (`{"trials": [...]}`)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from harness.optimize.board import Board

VERDICT_STYLE = {"keep": "green", "discard": "dim", "crash": "red"}


def board_table(board: Board) -> Table:
    """One row per trial: n, kind, verdict, mean ± std, diff vs incumbent and p, holdout, cost, time, hypothesis."""
    table = Table(title=f"{board.feature}: {board.metric} ({board.direction}), keep at p < {board.alpha:g}",
                  title_justify="left")
    for name in ("n", "trial", "verdict", "mean ± std", "diff (p)", "holdout", "tokens", "$", "time", "hypothesis",
                 "commit / ref"):
        table.add_column(name, overflow="fold")
    for t in board.trials:
        figure = f"{t.mean:.5g} ± {t.std:.2g}" if t.mean is not None and t.std is not None else "-"
        versus = f"{t.diff:+.4g} ({t.p_value:.3g})" if t.diff is not None and t.p_value is not None else "-"
        where = (t.commit or "")[:10] or (t.ref or "")
        table.add_row(str(t.n), t.kind, Text(t.verdict, style=VERDICT_STYLE[t.verdict]), figure, versus,
                      "-" if t.holdout is None else f"{t.holdout:.5g}", str(t.tokens), f"{t.cost_usd:.4f}",
                      f"{t.wall_s:.0f}s", Text(t.hypothesis or ("fresh seeds" if t.kind == "confirmation" else t.detail[:60])), Text(where))
    return table


def ending_lines(board: Board) -> list[str]:
    """How the search ended, in a few lines (nothing while it runs)."""
    e = board.ending
    if e is None:
        kept = sum(t.verdict == "keep" for t in board.candidates)
        return [f"searching: {len(board.candidates)} trial(s), {kept} kept"]
    if not any(t.verdict == "keep" for t in board.candidates):
        return [f"ended: {e.stopped}; no candidate beat the baseline, so there was nothing to confirm"]
    lines = [f"ended: {e.stopped}; the winner {'was' if e.confirmed else 'was NOT'} confirmed on fresh seeds"]
    if e.tag:
        lines.append(f"best: {e.best_commit} (tag {e.tag})")
    if e.winner_holdout is not None:
        gap = f", visible - holdout gap {e.gap:+.4g}" if e.gap is not None else ""
        base = f"{e.baseline_holdout:.5g}" if e.baseline_holdout is not None else "-"
        lines.append(f"holdout: baseline {base}, winner {e.winner_holdout:.5g}{gap}")
    return lines
