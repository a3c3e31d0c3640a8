"""The leaderboard's plot: every trial a dot (kept, discarded, crashed) over its per-seed values (small and faint:
the noise the keep rule weighs), the kept ones joined by the running best, the baseline as a line, the holdout
figures beside, the confirmation on fresh seeds at the end.

matplotlib is imported inside `plot_board` (the Agg backend: no display needed): the light commands never
load it.
"""

from __future__ import annotations

from pathlib import Path

from harness.optimize.board import Board


def plot_board(board: Board, out: Path) -> Path:
    """Write the plot of `board` to `out` (PNG); returns `out`."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    base = board.baseline
    if base is not None and base.mean is not None:
        ax.axhline(base.mean, color="grey", linestyle="--", linewidth=1, label=f"baseline {base.mean:.4g}")
    style = {"keep": ("o", "tab:green", "kept"), "discard": ("o", "tab:grey", "discarded"),
             "crash": ("x", "tab:red", "crashed")}
    seeds = [(t.n, v) for t in board.trials if t.kind != "confirmation" for v in t.per_seed.values()]
    if seeds:
        ax.scatter(*zip(*seeds), s=9, color="black", alpha=0.25, linewidths=0, label="per seed", zorder=2)
    crash_y = min((t.mean for t in board.trials if t.mean is not None), default=0.0)
    for verdict, (marker, colour, label) in style.items():
        points = [(t.n, t.mean if t.mean is not None else crash_y) for t in board.trials
                  if t.kind == "candidate" and t.verdict == verdict]
        if points:
            ax.scatter(*zip(*points), marker=marker, color=colour, label=label, zorder=3)
    kept = [t for t in board.trials if t.kind != "confirmation" and t.verdict == "keep" and t.mean is not None]
    if kept:  # the running best: a step from each kept trial to the next
        last = max((t.n for t in board.candidates), default=0)
        xs = [t.n for t in kept] + [last]
        ys = [t.mean for t in kept] + [kept[-1].mean]
        ax.step(xs, ys, where="post", color="tab:green", linewidth=1.5, label="running best (incumbent)")
    held = [(t.n, t.holdout) for t in board.trials if t.holdout is not None and t.kind != "confirmation"]
    if held:
        ax.scatter(*zip(*held), marker="D", facecolors="none", edgecolors="tab:purple", label="holdout", zorder=3)
    confirm = next((t for t in board.trials if t.kind == "confirmation" and t.mean is not None), None)
    if confirm is not None:
        ax.errorbar([confirm.n], [confirm.mean], yerr=[confirm.std or 0.0], fmt="s", color="tab:blue",
                    label=f"winner on fresh seeds ({'confirmed' if confirm.verdict == 'keep' else 'not confirmed'})")
        if confirm.versus:
            mean = sum(confirm.versus.values()) / len(confirm.versus)
            ax.scatter([confirm.n], [mean], marker="s", facecolors="none", edgecolors="grey",
                       label="baseline on fresh seeds")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("trial (0 = baseline)")
    ax.set_ylabel(f"{board.metric} (mean over seeds, {'higher' if board.direction == 'max' else 'lower'} is better)")
    ax.set_title(f"{board.feature}: optimize leaderboard (keep rule: paired t-test, alpha {board.alpha:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
