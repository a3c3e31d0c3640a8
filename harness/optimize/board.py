"""The leaderboard: every trial of a search, as `.ralph/optimize/<feature>/leaderboard.json` holds it.

Its JSON is `{"trials": [...], ...}`: each trial with its `verdict` (`keep`, `discard` or `crash`), the commit
(kept, baseline) or ref (discarded), the metric per seed, mean and std, the difference from the incumbent it
was compared with and p, the hypothesis, tokens, cost, wall time and the holdout figure. Tools outside the
repository (the HTML report) read that shape: add fields beside, never rename.

The agent sees the board in its prompt without the holdout figures (`for_agent`): a number it could fit is
no holdout.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Literal

from pydantic import Field

from harness.books.layout import OPTIMIZE, ralph_dir
from harness.books.records import Record
from harness.errors import RalphError
from harness.fileio import atomic_write_text, now_iso

Kind = Literal["baseline", "candidate", "confirmation"]
TrialVerdict = Literal["keep", "discard", "crash"]
BOARD_FILE = "leaderboard.json"


class Trial(Record):
    """One row of the leaderboard."""

    n: int = Field(description="0 for the baseline, 1, 2, ... for candidates; the confirmation comes last")
    kind: Kind
    verdict: TrialVerdict
    hypothesis: str = ""
    commit: str | None = Field(None, description="the kept commit (the baseline: the commit the search started at)")
    ref: str | None = Field(None, description="refs/ralph/discarded/<feature>/<n> for a discarded or crashed trial")
    patch: str | None = Field(None, description="the candidate's diff from its incumbent, .ralph/optimize/<feature>/")
    seeds: list[int] = Field(default_factory=list)
    per_seed: dict[int, float] = Field(default_factory=dict, description="the metric per seed")
    mean: float | None = None
    std: float | None = None
    incumbent: int | None = Field(None, description="n of the trial it was compared with")
    diff: float | None = Field(None, description="mean of (this - incumbent) over the paired seeds")
    p_value: float | None = None
    versus: dict[int, float] = Field(default_factory=dict, description="the confirmation: the baseline's values on "
                                     "the fresh seeds it was compared with")
    detail: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    compute_hours: float = Field(0.0, description="its checks' runs, summed over seeds (a Ray job: its run time)")
    gpu_hours: float = Field(0.0, description="GPUs its Ray jobs reserved × their run times")
    holdout: float | None = Field(None, description="the holdout figure (mean over the seeds), harness-only")
    at: str = Field(default_factory=now_iso)

    @classmethod
    def measured(cls, per_seed: dict[int, float], **fields: object) -> Trial:
        """A trial whose metric was read for each seed: mean and sample std (n-1) filled in."""
        values = list(per_seed.values())
        return cls(per_seed=per_seed, seeds=sorted(per_seed), mean=statistics.fmean(values),
                   std=statistics.stdev(values) if len(values) > 1 else 0.0, **fields)  # type: ignore[arg-type]


class Ending(Record):
    """How the search ended: why it stopped, the confirmation, the tag, the holdout gap."""

    stopped: str
    confirmed: bool
    best_commit: str | None = None
    tag: str | None = None
    baseline_holdout: float | None = None
    winner_holdout: float | None = None
    gap: float | None = Field(None, description="the winner's visible mean minus its holdout figure")


class Board(Record):
    """The whole leaderboard of one feature's search."""

    feature: str
    metric: str
    direction: Literal["max", "min"]
    alpha: float
    trials: list[Trial] = Field(default_factory=list)
    steer_sha256: str | None = Field(None, description="the steering file as last read (a change is logged)")
    ending: Ending | None = None

    # ---------------------------------------------------------------- reading

    @property
    def baseline(self) -> Trial | None:
        return next((t for t in self.trials if t.kind == "baseline" and t.verdict == "keep"), None)

    @property
    def candidates(self) -> list[Trial]:
        return [t for t in self.trials if t.kind == "candidate"]

    @property
    def incumbent(self) -> Trial | None:
        """The last kept trial (the baseline until a candidate is kept)."""
        return next((t for t in reversed(self.trials) if t.kind != "confirmation" and t.verdict == "keep"), None)

    def has(self, n: int) -> bool:
        return any(t.n == n and t.kind == "candidate" for t in self.trials)

    def not_kept_in_a_row(self) -> int:
        """Candidates since the last kept one (discards and crashes)."""
        count = 0
        for t in reversed(self.candidates):
            if t.verdict == "keep":
                break
            count += 1
        return count

    def spent(self) -> tuple[float, int, float]:
        """(wall seconds, tokens, USD) over every trial recorded."""
        return (sum(t.wall_s for t in self.trials), sum(t.tokens for t in self.trials),
                sum(t.cost_usd for t in self.trials))

    def for_agent(self) -> str:
        """The board as the agent's prompt shows it: no holdout figures, no paths of ralph's records."""
        lines = ["n | verdict | mean ± std | diff vs incumbent (p) | hypothesis"]
        for t in self.trials:
            if t.kind == "confirmation":
                continue
            figure = f"{t.mean:.6g} ± {t.std:.2g}" if t.mean is not None and t.std is not None else "-"
            versus = f"{t.diff:+.4g} vs #{t.incumbent} (p {t.p_value:.3g})" if t.diff is not None and \
                t.p_value is not None else "-"
            said = t.hypothesis or ("(the tree the search started from)" if t.kind == "baseline" else "-")
            why = f" [{t.detail}]" if t.verdict == "crash" and t.detail else ""
            lines.append(f"{t.n} | {t.verdict} | {figure} | {versus} | {said}{why}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """`{"trials": [...], ...}`: what `ralph leaderboard --json` prints."""
        return self.model_dump(mode="json")


# ---------------------------------------------------------------- where it lives


def optimize_dir(repo: Path | str, feature_id: str) -> Path:
    """`.ralph/optimize/<feature>/`."""
    return ralph_dir(repo) / OPTIMIZE / feature_id


def load_board(repo: Path | str, feature_id: str) -> Board | None:
    """The feature's leaderboard, or None when no search has started."""
    path = optimize_dir(repo, feature_id) / BOARD_FILE
    if not path.is_file():
        return None
    try:
        return Board.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise RalphError(f"{path} (the leaderboard of {feature_id}'s search) cannot be read: {e}") from None


def save_board(repo: Path | str, board: Board) -> Path:
    """Write the leaderboard atomically; returns its path."""
    path = optimize_dir(repo, board.feature) / BOARD_FILE
    atomic_write_text(path, json.dumps(board.to_json(), indent=1) + "\n")
    return path


def require_board(repo: Path | str, feature_id: str) -> Board:
    board = load_board(repo, feature_id)
    if board is None:
        raise RalphError(f"{feature_id} has no leaderboard yet: it is not an optimize feature, or its search has not "
                         f"started (`ralph run --feature {feature_id}` starts it)")
    return board
