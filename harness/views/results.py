"""A feature's figures per seed, read back from its evidence: the results page's tables and charts.

Gates record each seed's value as `<key>[seed=S]` (judge/checks.py); a comparison records both sides
as `<check>.a[seed=S]` (the treatment) and `<check>.b[seed=S]` (the control), and its confirmation on
fresh seeds under `<check>.confirm.…`. Report figures carry theirs in `ReportValue.per_seed`.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.books.attempts import AttemptEntry
from harness.books.records import Evidence
from harness.plan.prd import Check
from harness.views.charts import Series

SEEDED = re.compile(r"^(?P<base>.+)\[seed=(?P<seed>-?\d+)\]$")


@dataclass
class Column:
    """One quantity's value per seed. `role`: gate (a metric check), treatment or control (a comparison's a or b
    side), report (a report figure, never gating)."""

    label: str
    check: str
    role: str
    values: dict[int, float] = field(default_factory=dict)
    op: str = ""
    threshold: float | None = None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values.values()) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n-1) over seeds, as the gates use; None under two values."""
        return statistics.stdev(self.values.values()) if len(self.values) > 1 else None


def _seeded(figures: dict[str, float]) -> dict[str, dict[int, float]]:
    """`{'acc[seed=0]': .4, 'acc[seed=1]': .5}` -> `{'acc': {0: .4, 1: .5}}`."""
    out: dict[str, dict[int, float]] = {}
    for key, value in figures.items():
        m = SEEDED.match(key)
        if m:
            out.setdefault(m["base"], {})[int(m["seed"])] = value
    return out


def seed_columns(evidence: Sequence[Evidence], checks: Sequence[Check]) -> list[Column]:
    """Every per-seed quantity of a verification: gates (with their thresholds), comparisons' sides, report
    figures. `checks`: the feature's checks as PRD.json states them, for the thresholds."""
    by_name = {c.name: c for c in checks}
    columns: list[Column] = []
    for e in evidence:
        check = by_name.get(e.check)
        for base, values in _seeded(e.figures).items():
            if e.kind == "compare":
                side = base.rsplit(".", 1)[-1]
                fresh = " (fresh seeds)" if base.startswith(f"{e.check}.confirm.") else ""
                role = "control" if side == "b" else "treatment"
                label = f"{e.check}{fresh}: {side} ({role})"
                columns.append(Column(label, e.check, role, values))
            else:
                gate = check.metric if check is not None else None
                columns.append(Column(base, e.check, "gate", values, gate.op if gate else "",
                                      gate.value if gate else None))
        columns += [Column(f"{v.name} (report)", e.check, "report", dict(v.per_seed)) for v in e.report if v.per_seed]
    return columns


def attempt_series(entries: Sequence[AttemptEntry], checks: Sequence[Check]) -> list[Series]:
    """One chart's data per gated quantity (a gate, or a comparison with its control) across `entries`."""
    found: dict[str, Series] = {}
    for entry in entries:
        for col in seed_columns(entry.evidence, checks):
            if col.role == "report":
                continue
            key = col.check if col.role in ("treatment", "control") else f"{col.check}/{col.label}"
            title = (f"{col.check}: treatment (a) against its control (b)" if col.role in ("treatment", "control")
                     else f"{col.check}: {col.label}")
            if "(fresh seeds)" in col.label:
                key, title = key + " fresh", title + ", fresh seeds"
            series = found.setdefault(key, Series(title=title, ylabel=col.label.split(": ")[0] if col.role == "gate"
                                                  else f"{col.check} (a, b)", threshold=col.threshold, op=col.op))
            (series.control if col.role == "control" else series.points)[entry.attempt] = col.values
            series.status[entry.attempt] = entry.status
    for series in found.values():  # an attempt whose treatment was not read still has its place on the axis
        for attempt in series.control:
            series.points.setdefault(attempt, {})
    return list(found.values())
