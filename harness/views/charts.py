"""Charts for the results page: a gated quantity across a feature's attempts and seeds (matplotlib, as SVG).

One chart per gated quantity: each attempt's value for each seed (a point per seed, one colour per
seed), their mean (a line), the gate's threshold and, for a comparison, the control's mean (both as
lines). The SVG is embedded in the page as an image (a data URI), so nothing in it can run there.
"""

from __future__ import annotations

import base64
import io
import statistics
from dataclasses import dataclass, field


@dataclass
class Series:
    """A quantity across attempts: `points[attempt] = {seed: value}`; `control` the same for the control side
    of a comparison; `status[attempt]` the attempt's verdict (passing, failing, ...)."""

    title: str
    ylabel: str
    points: dict[int, dict[int, float]] = field(default_factory=dict)
    control: dict[int, dict[int, float]] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    threshold: float | None = None
    op: str = ""


def _plain(text: str) -> str:
    """`text` shown as it is: matplotlib reads `$…$` as mathematics (and raises on a malformed formula)."""
    return text.replace("$", r"\$")


def chart_svg(series: Series) -> str:
    """The chart as a data URI of an SVG image (labelled axes, the threshold and the control as lines)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file only
    from matplotlib.figure import Figure

    attempts = sorted(series.points)
    x_of = {a: i for i, a in enumerate(attempts)}
    fig = Figure(figsize=(6.4, 3.2), dpi=100)
    ax = fig.add_subplot()
    seeds = sorted({s for per_seed in series.points.values() for s in per_seed})
    colours = matplotlib.colormaps["tab10"]
    for i, seed in enumerate(seeds):
        xs = [x_of[a] + 0.06 * (i - (len(seeds) - 1) / 2) for a in attempts if seed in series.points[a]]
        ys = [series.points[a][seed] for a in attempts if seed in series.points[a]]
        ax.scatter(xs, ys, s=22, color=colours(i % 10), label=f"seed {seed}", zorder=4)
    means = [(x_of[a], statistics.fmean(series.points[a].values())) for a in attempts if series.points[a]]
    if means:
        ax.plot(*zip(*means), color="#1f2328", marker="D", markersize=7, markerfacecolor="none", linewidth=1.5,
                label="mean over seeds", zorder=3)  # hollow and under the seeds' points: none is hidden
    control = [(x_of[a], statistics.fmean(series.control[a].values())) for a in attempts if series.control.get(a)]
    if control:
        ax.plot(*zip(*control), color="#8250df", linestyle="--", marker="o", markersize=4, linewidth=1.3,
                label="control (b), mean", zorder=2)
    if series.threshold is not None:
        ax.axhline(series.threshold, color="#cf222e", linestyle=":", linewidth=1.5,
                   label=f"gate: {series.op} {series.threshold:g}")
    ax.set_xticks(range(len(attempts)), [f"{a}\n{series.status.get(a, '')}" for a in attempts])
    ax.set_xlim(-0.5, max(len(attempts) - 0.5, 0.5))
    ax.set_xlabel("attempt")
    ax.set_ylabel(_plain(series.ylabel))
    ax.set_title(_plain(series.title), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()
