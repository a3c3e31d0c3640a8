"""The record types ralph saves: evidence of a check, the W&B runs behind a figure, jobs on a cluster.

These are the ground floor of the harness: the ledger (.ralph/state.json), progress.txt, the commit
trailers and every view read them, so they import nothing of the harness above `fileio`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.fileio import now_iso

Verdict = Literal["pass", "fail", "error", "timeout"]


class Record(BaseModel):
    """Base of everything saved in state.json: Infinity / NaN are written as JSON constants that load
    back, never as null (an unloadable null made every later command fail)."""

    model_config = ConfigDict(ser_json_inf_nan="constants", defer_build=True)


class WandbRun(BaseModel):
    """One W&B run a result file names."""

    model_config = ConfigDict(defer_build=True)

    id: str
    url: str | None = None
    project: str | None = None
    dir: str | None = None

    def describe(self) -> str:
        """One line: the URL online; offline, the run's folder and how to upload it."""
        where = f"project {self.project}, " if self.project else ""
        if self.url:
            return f"{self.id} ({where}{self.url})"
        if self.dir:
            return f"{self.id} (offline, {where}folder {self.dir}; upload: wandb sync {self.dir})"
        return f"{self.id} (offline, {where}no local folder recorded)"


def unique(runs: Iterable[WandbRun]) -> list[WandbRun]:
    """`runs` without repeats (seeds of one gate, two gates on one file), first seen first."""
    seen: dict[str, WandbRun] = {}
    for run in runs:
        seen.setdefault(run.id, run)
    return list(seen.values())


class ComparisonStats(Record):
    """The statistics behind a `compare` check's verdict (judge/stats.py; docs/statistics.md)."""

    test: str = Field(description="the statistical test: 'paired t-test', 'Welch t-test', or 'TOST' with one of them")
    claim: Literal["greater", "less", "noninferior", "equivalent"] = Field(description="the PRD's `test`: what was "
                                                                           "to be shown about a - b")
    paired: bool
    n: int = Field(description="pairs when paired, else every run of both sides (n_a + n_b)")
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float = Field(description="the mean difference a - b (the mean of the per-seed differences when paired)")
    ci: tuple[float, float] = Field(description="confidence interval of the difference at `ci_level`")
    ci_level: float = Field(description="1 - 2 alpha: the two-sided interval whose bounds decide a one-sided test at "
                            "alpha (0.90 for alpha 0.05)")
    p_value: float
    alpha: float
    margin: float | None = None
    df: float = Field(description="degrees of freedom of the t distribution used")
    seeds: list[int] | None = Field(None, description="the seeds of a (and of b when paired); recorded since "
                                    "confirmations on fresh seeds, None in older records")

    def summary(self) -> str:
        """One line for the board, the report and the commit: the difference, its interval, p, test and n."""
        sizes = f"{self.n} pairs" if self.paired else f"{self.n_a} + {self.n_b}"
        return (f"a - b = {self.diff:+.4g}, {self.ci_level:.0%} CI [{self.ci[0]:+.4g}, {self.ci[1]:+.4g}], "
                f"p = {self.p_value:.3g} ({self.test}, n = {sizes})")


class ReportValue(Record):
    """A report figure as read at a verification (judge/checks.py `read_report`): shown, never gating."""

    name: str = Field(description="the label: the PRD's `name`, or the key")
    file: str = Field(description="the file as the PRD names it ({seed} unsubstituted)")
    key: str
    value: float | None = Field(None, description="the value, or the mean over seeds; None when it could not be read")
    std: float | None = Field(None, description="sample standard deviation (n-1) over seeds; None for one run")
    n: int = Field(0, description="how many values were read")
    per_seed: dict[int, float] = Field(default_factory=dict, description="seed -> value, for a seeded figure")
    missing: str | None = Field(None, description="why it could not be read (a missing file or key, ...)")

    def text(self) -> str:
        """'eval.acc = 0.412 ± 0.021 (std; n = 3)', 'eval.acc = 0.412', or 'eval.acc: missing (why)'."""
        if self.value is None:
            return f"{self.name}: missing ({self.missing})"
        if self.std is None:
            return f"{self.name} = {self.value:.4g}"
        return f"{self.name} = {self.value:.4g} ± {self.std:.2g} (std; n = {self.n})"


class Evidence(Record):
    """What one check did, as recorded in state.json and progress.txt."""

    check: str
    kind: Literal["run", "metric", "compare", "guard"]  # guard: the loop's protected-path comparison
    verdict: Verdict
    detail: str = Field(description="one line: why it passed or failed")
    figures: dict[str, float] = Field(default_factory=dict, description="metric values read")
    duration_s: float
    commit: str | None = None
    at: str = Field(default_factory=now_iso)
    command: str | None = None
    exit_code: int | None = None
    output_tail: str = ""
    log: str | None = None
    sources: dict[str, str] = Field(default_factory=dict, description="metric files read -> sha256")
    check_sha256: str | None = Field(None, description="`Check.digest` of the check that produced it; None in "
                                     "evidence recorded before checks were hashed, and for the loop's guard")
    wandb: list[WandbRun] = Field(default_factory=list, description="W&B runs the metric files name (runlinks.py)")
    comparison: ComparisonStats | None = Field(None, description="a `compare` check's statistics, once its inputs "
                                               "were read (None for other checks and for broken inputs)")
    confirmation: ComparisonStats | None = Field(None, description="a `compare` check's statistics on its "
                                                 "`confirm_seeds` alone, once the first comparison passed and the "
                                                 "fresh seeds' runs and files were read")
    report: list[ReportValue] = Field(default_factory=list, description="the feature's report figures, read at this "
                                      "verification; carried by its last check's evidence (`report_values`), never "
                                      "part of its verdict")

    @model_validator(mode="before")
    @classmethod
    def _finite_figures(cls, data: Any) -> Any:
        """Evidence from an older ralph may hold a figure saved as null (it wrote Infinity / NaN that
        way): drop it, and a pass that rested on it becomes an error, so the record still loads and
        says what is wrong instead of vouching for an unmeasurable value."""
        if not isinstance(data, dict) or not isinstance(data.get("figures"), dict):
            return data
        bad = [k for k, v in data["figures"].items() if not _finite_number(v)]
        if not bad:
            return data
        data = {**data, "figures": {k: v for k, v in data["figures"].items() if k not in bad}}
        if data.get("verdict") == "pass":
            data["verdict"] = "error"
            data["detail"] = (f"{data.get('detail', '')} [recorded value of {', '.join(bad)} is not a finite number; "
                              "re-verify]").strip()
        return data

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def report_values(evidence: Iterable[Evidence]) -> list[ReportValue]:
    """The report figures recorded with a verification's evidence (whichever evidence carries them)."""
    return [v for e in evidence for v in e.report]


def comparisons(evidence: Iterable[Evidence]) -> list[tuple[str, Verdict, ComparisonStats]]:
    """(label, the check's verdict, statistics) of every comparison tested: each `compare` check's, then its
    confirmation on fresh seeds, labelled '<check> (fresh seeds 5, 6, 7)'."""
    out: list[tuple[str, Verdict, ComparisonStats]] = []
    for e in evidence:
        if e.comparison is not None:
            out.append((e.check, e.verdict, e.comparison))
        if e.confirmation is not None:
            seeds = ", ".join(map(str, e.confirmation.seeds or []))
            out.append((f"{e.check} (fresh seeds{' ' + seeds if seeds else ''})", e.verdict, e.confirmation))
    return out


def all_passed(evidence: Iterable[Evidence]) -> bool:
    """True when there is evidence and all of it passed (no checks never means passing)."""
    items = list(evidence)
    return bool(items) and all(e.passed for e in items)


JobState = Literal["SUBMITTING", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]


TERMINAL: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


class JobRecord(Record):
    """One submitted job (one seed of one check), as the ledger keeps it."""

    id: str = Field(description="the Ray submission id, chosen by ralph before submitting")
    feature: str
    check: str
    seed: int | None = None
    attempt: int
    state: JobState = "SUBMITTING"
    entrypoint: str
    nonce: str = Field(description="marks this job's result block in its log")
    gpus: float = 0.0
    cpus: float = 1.0
    memory_gb: float | None = None
    timeout_s: float
    submitted_at: float = Field(description="epoch seconds")
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def elapsed_s(self, now: float) -> float:
        start = self.started_at or self.submitted_at
        return max(0.0, (self.ended_at or now) - start)

    @property
    def gpu_hours(self) -> float:
        if self.started_at is None or self.ended_at is None:
            return 0.0
        return self.gpus * (self.ended_at - self.started_at) / 3600


class Pending(Record):
    """A verification whose Ray jobs have not all finished: what collecting it needs later."""

    attempt: int
    base_commit: str | None = Field(description="HEAD when the jobs were submitted")
    tree: str = Field(description="the candidate tree the jobs run")
    changes: dict[str, list[str] | None] = Field(description="path -> [mode, blob] (None: deleted) the attempt "
                                                 "made against base_commit: its part of the working tree")
    baseline: dict = Field(description="the protected paths' snapshot the job tree was built with")
    local_evidence: list[Evidence] = Field(default_factory=list, description="the feature's local run checks")
    outputs: list[str] = Field(default_factory=list, description="files the local checks wrote")
    log_dir: str
    entry_kind: str = "attempt"
    entry_fields: dict[str, str] = Field(default_factory=dict)
    entry_agent: dict[str, Any] = Field(default_factory=dict)


def headline_metrics(evidence: Iterable[Evidence]) -> dict[str, float]:
    """Figures from metric checks and comparisons, without the per-seed values (those stay in state.json)."""
    return {k: v for e in evidence for k, v in e.figures.items() if "[seed=" not in k}
