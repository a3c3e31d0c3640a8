"""The README's results table from the search's leaderboard.json (written by `ralph leaderboard O8-SEARCH --json`).

Usage: python experiments/optimize-seqjepa/table.py [leaderboard.json]  → a markdown table on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:+.{digits}f}"


def main(path: Path) -> None:
    board = json.loads(path.read_text())
    print("| n | kind | hypothesis | verdict | per seed | mean ± std | diff vs incumbent | p | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in board["trials"]:
        seeds = ", ".join(f"{float(v):.4f}" for v in t["per_seed"].values()) if t["per_seed"] else ""
        mean = "" if t["mean"] is None else f"{t['mean']:.4f} ± {t['std']:.4f}"
        p = "" if t["p_value"] is None else f"{t['p_value']:.3g}"
        hyp = (t["hypothesis"] or ("baseline: quick.yaml's recipe" if t["kind"] == "baseline" else t["detail"] or ""))
        hyp = hyp.replace("|", "/")
        wall = "" if t["wall_s"] is None else f"{t['wall_s']:.0f}"
        print(f"| {t['n']} | {t['kind']} | {hyp} | {t['verdict']} | {seeds} | {mean} | {fmt(t['diff'])} | {p} | {wall} |")
    if board.get("ending"):
        print(f"\nending: {json.dumps(board['ending'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "experiments/optimize-seqjepa/leaderboard.json"))
