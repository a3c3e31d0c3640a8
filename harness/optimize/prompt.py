"""The prompt of one trial: the plan, the leaderboard so far, the incumbent's diff from the baseline, the steer
file, and how to state the hypothesis. Every part has a character cap."""

from __future__ import annotations

from pathlib import Path

from harness.fileio import clip
from harness.optimize.board import Board
from harness.plan.prd import Feature

HYPOTHESIS_FILE = "hypothesis.txt"  # the agent's one-line hypothesis; ralph reads and removes it
PRINCIPLES_MAX = 6_000
BOARD_MAX = 8_000
DIFF_MAX = 12_000
STEER_MAX = 4_000

RULES = """\
You are a coding agent running ONE trial of a metric search in a git repository.
- The harness, not you, measures the result: after you stop it runs the checks below on a clean checkout
  of your change, for each seed, and reads the metric itself. Numbers you report change nothing.
- Your change is KEPT only when a paired one-sided t-test over the seeds shows it beats the incumbent at
  the level alpha; otherwise it is discarded (saved by the harness; the tree goes back to the incumbent).
  A check that fails is a crash. Small noisy gains are not kept: aim for a real improvement.
- You cannot change the plan or the judge: PRD.json, progress.txt, .ralph/, .git/ and the paths listed as
  fixed are restored after your turn and any edit makes the trial a crash.
- Do not commit: the harness commits a kept change.
- State your hypothesis in one line: write it to hypothesis.txt at the repository root (the harness reads
  its first line, records it on the leaderboard and removes the file). Then stop."""


def trial_prompts(repo: Path, feature: Feature, board: Board, n: int, protected: list[str], diff: str,
                  steer: str) -> tuple[str, str]:
    """(system, prompt) for trial `n` of `feature`'s search."""
    opt = feature.optimize
    assert opt is not None
    principles_path = repo / "DESIGN-PRINCIPLES.md"
    principles = principles_path.read_text(encoding="utf-8") if principles_path.is_file() else ""
    checks = "\n".join(f"- {c.name}: `{c.run}`" + (" for each seed" if c.seeds else "") if c.run is not None
                       else f"- {c.name}: {c.metric.file if c.metric else ''} gate" for c in feature.verify)
    better = "higher" if opt.direction == "max" else "lower"
    hidden = f"\nHidden from you (a holdout only the harness evaluates): {', '.join(opt.holdout.paths)}" \
        if opt.holdout else ""
    system = "\n\n".join(filter(None, [
        RULES,
        f"# Principles\n{clip(principles, PRINCIPLES_MAX)}" if principles else "",
        "# Fixed paths (you may not change them)\n" + "\n".join(f"- {p}" for p in protected) + hidden,
        f"# The search: {feature.id} — {feature.title}\n{feature.description}\n"
        f"Metric: `{opt.metric.key}` in {opt.metric.file}, {better} is better; seeds {opt.seeds}; alpha {opt.alpha:g}.\n"
        f"Checks the harness runs (seeded ones for the seeds above):\n{checks}",
    ]))
    prompt = "\n\n".join(filter(None, [
        f"# Trial {n}",
        f"## Leaderboard so far (discards and crashes included)\n{clip(board.for_agent(), BOARD_MAX)}",
        f"## The incumbent's diff from the baseline\n{clip(diff, DIFF_MAX) if diff.strip() else '(none yet)'}",
        f"## Steering from the person running the search\n{clip(steer, STEER_MAX)}" if steer.strip() else "",
        "Make one change you expect to beat the incumbent, write your one-line hypothesis to hypothesis.txt, "
        "and stop.",
    ]))
    return system, prompt
