"""Run one check — a shell command, a metric gate or a comparison — and record what happened as `Evidence`.

The harness, never the agent, runs these. Commands run in their own process group with the
secrets stripped from their environment (`harness.sandbox.proc`); metric gates and comparisons read
JSON the runs wrote (a comparison's statistics: `judge.stats`). A broken check (missing file or key,
unparsable JSON, a value that is not a finite number) is a failed check with a message saying what
is wrong, never an exception.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.books.records import ComparisonStats, Evidence, ReportValue, Verdict, WandbRun, unique
from harness.fileio import sha256_file
from harness.judge import stats
from harness.judge.executors import slug
from harness.judge.executors.local import Launch, run_command_check
from harness.judge.runlinks import wandb_runs
from harness.plan.prd import Check, Comparison, ReportFigure, Source, seeded
from harness.sandbox.proc import run_in_group

MAX_METRIC_BYTES = 16 << 20  # a metric file is a results summary; anything larger is refused, not parsed
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}


def holds(value: float, op: str, threshold: float) -> bool:
    """The gate rule: `value op threshold`, `==` within a relative 1e-9 and an absolute 1e-12 (`lab gate` uses it
    too, through lab/results.py)."""
    return _OPS[op](value, threshold)


class Reporter(Protocol):
    """Receives progress while checks run (the CLI's live display implements it)."""

    def started(self, check: Check, index: int, total: int) -> None: ...

    def line(self, text: str) -> None: ...

    def finished(self, evidence: Evidence) -> None: ...


def plan_labels(phase: int, feature: str | None = None) -> dict[str, str]:
    """The variables that tell a check's runs what they are for (the lab tags its W&B runs with them):
    RALPH_PHASE, and RALPH_FEATURE for a feature's checks; RALPH_SEED is added per seeded run."""
    return {"RALPH_PHASE": str(phase), **({"RALPH_FEATURE": feature} if feature else {})}


# ---------------------------------------------------------------- metric gates


class MetricProblem(Exception):
    """A gate could not be evaluated; `verdict` says whether that is a fail or an error."""

    def __init__(self, message: str, verdict: Verdict = "fail"):
        super().__init__(message)
        self.verdict: Verdict = verdict


def lookup(data: Any, key: str) -> Any:
    """Find `key` in decoded JSON. A flat key is tried first ("eval.linacc_agg" as one key, as the
    lab writes them), then the dots are followed into nested objects, longest prefix first, and
    into lists by integer index. Raises KeyError when nothing matches."""
    if isinstance(data, dict) and key in data:
        return data[key]
    if isinstance(data, list) and key.isdigit() and int(key) < len(data):
        return data[int(key)]
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head, rest = ".".join(parts[:cut]), ".".join(parts[cut:])
        if isinstance(data, dict) and head in data:
            try:
                return lookup(data[head], rest)
            except KeyError:
                continue
        if isinstance(data, list) and head.isdigit() and int(head) < len(data):
            try:
                return lookup(data[int(head)], rest)
            except KeyError:
                continue
    raise KeyError(key)


def _flat_keys(data: Any, prefix: str = "") -> list[str]:
    if not isinstance(data, dict):
        return [prefix] if prefix else []
    out: list[str] = []
    for k, v in data.items():
        out += _flat_keys(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _describe_value(value: Any) -> str:
    """A value that is not a number, shown briefly (a container is named, not printed: it may be huge)."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    return json.dumps(value)[:60]


def read_metric(repo: Path, gate: Source, seed: int | None) -> tuple[float, str, str, Any]:
    """(value, relative path, sha256 of the file, its decoded JSON) for one gate or one side of a comparison
    ({seed} substituted in its file and key), or raise `MetricProblem`."""
    rel, key = seeded(gate.file, seed), seeded(gate.key, seed)
    path = (repo / rel).resolve()
    if not path.is_relative_to(repo.resolve()):
        raise MetricProblem(f"metric file {rel} is outside the repository", "error")
    if not path.is_file():
        raise MetricProblem(f"metric file {rel} not found (did the run that writes it succeed?)")
    if path.stat().st_size > MAX_METRIC_BYTES:
        raise MetricProblem(f"metric file {rel} is larger than {MAX_METRIC_BYTES >> 20} MiB: a results file, not a "
                            "dump; write the figures a gate reads to a small JSON file", "error")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MetricProblem(f"metric file {rel} is not valid JSON (line {e.lineno}, column {e.colno})", "error")
    except RecursionError:
        raise MetricProblem(f"metric file {rel} is nested too deep to read as JSON", "error") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: an integer with too many digits
        raise MetricProblem(f"metric file {rel} cannot be read: {e}", "error")
    try:
        value = lookup(data, key)
    except KeyError:
        try:
            close = difflib.get_close_matches(key, _flat_keys(data), n=3, cutoff=0.5)
        except RecursionError:
            close = []
        hint = f"; similar keys: {', '.join(close)}" if close else ""
        raise MetricProblem(f"key '{key}' not found in {rel}{hint}") from None
    except RecursionError:
        raise MetricProblem(f"metric file {rel} is nested too deep to look up '{key}'", "error") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricProblem(f"'{key}' in {rel} is {_describe_value(value)}, not a number", "error")
    try:
        number = float(value)  # an integer beyond a float's range raises here
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):  # json.loads reads NaN and Infinity; neither is a measurement
        shown = f"{value}" if isinstance(value, float) else f"an integer of {len(str(abs(value)))} digits"
        raise MetricProblem(f"'{key}' in {rel} is {shown}, not a finite number (a diverged or broken run?)")
    return number, rel, sha256_file(path), data


@dataclass
class Reads:
    """What one gate or comparison read: each file with its sha256, and the W&B runs the files name."""

    repo: Path
    sources: dict[str, str] = field(default_factory=dict)
    runs: list[WandbRun] = field(default_factory=list)

    def value(self, gate: Source, seed: int | None) -> float:
        """The number `gate` names for `seed` (`read_metric`, which raises `MetricProblem`), its file recorded."""
        value, rel, digest, data = read_metric(self.repo, gate, seed)
        self.sources[rel] = digest
        self.runs += wandb_runs(data, self.repo)
        return value


def aggregate(values: Sequence[float], agg: str) -> tuple[float, float, float]:
    """(mean, std, score) where score is what the op compares: the mean, or mean minus std.

    std is the sample standard deviation (n-1), 0 for a single value; `mean-std` therefore asks
    that the gate hold even one standard deviation below the mean (a conservative lower bound).
    """
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std, mean - std if agg == "mean-std" else mean


def run_metric_check(check: Check, repo: Path) -> Evidence:
    gate = check.metric
    assert gate is not None
    start = time.monotonic()
    figures: dict[str, float] = {}
    values: list[float] = []
    reads = Reads(repo)
    try:
        for seed in check.seeds or [None]:
            values.append(reads.value(gate, seed))
            if seed is not None:
                figures[f"{gate.key}[seed={seed}]"] = values[-1]
    except MetricProblem as p:
        return _metric_evidence(check, p.verdict, str(p), start, figures, reads)
    if check.seeds is None:
        figures[gate.key] = score = values[0]
        shown = f"{gate.key} = {score:.6g}"
    else:
        agg = check.agg or "mean"
        mean, std, score = aggregate(values, agg)
        figures[gate.key], figures[f"{gate.key}.std"] = mean, std
        shown = f"{agg}({gate.key}) = {score:.6g} (mean {mean:.6g}, std {std:.6g}, n={len(values)})"
    if not math.isfinite(score):  # finite values whose mean or std overflows
        return _metric_evidence(check, "fail", f"{shown}: not a finite number", start, {}, reads)
    ok = holds(score, gate.op, gate.value)
    detail = f"{shown} {gate.op} {gate.value:g}" if ok else f"{shown}, needs {gate.op} {gate.value:g}"
    return _metric_evidence(check, "pass" if ok else "fail", detail, start, figures, reads)


def _metric_evidence(check: Check, verdict: Verdict, detail: str, start: float, figures: dict[str, float],
                     reads: Reads, comparison: ComparisonStats | None = None) -> Evidence:
    """The evidence of a gate or a comparison (`kind` from the check)."""
    return Evidence(
        check=check.name, kind=check.kind, verdict=verdict, detail=detail, figures=figures,
        duration_s=round(time.monotonic() - start, 3), sources=reads.sources, wandb=unique(reads.runs),
        comparison=comparison,
    )


# ---------------------------------------------------------------- comparisons


def run_compare_check(check: Check, repo: Path) -> Evidence:
    """Read both sides of a comparison for each of their seeds and test its claim (`judge.stats`).

    Figures, under the check's name N: N.a[seed=S] and N.b[seed=S] (each value read), N.a and N.b
    (the means), N.diff, N.ci_low, N.ci_high and N.p_value; the full result is `Evidence.comparison`.
    """
    assert check.compare is not None
    start, figures, reads = time.monotonic(), {}, Reads(repo)
    verdict, detail, found = _test_comparison(check, check.compare, reads, figures, check.name)
    return _metric_evidence(check, verdict, detail, start, figures, reads, found)


def _test_comparison(check: Check, comp: Comparison, reads: Reads, figures: dict[str, float],
                     prefix: str) -> tuple[Verdict, str, ComparisonStats | None]:
    """Read `comp`'s sides for their seeds (figures under `prefix`) and test its claim: (verdict, detail, result)."""
    values: dict[str, dict[int, float]] = {"a": {}, "b": {}}
    for side, sample in (("a", comp.a), ("b", comp.b)):
        for seed in comp.seeds_of(side):  # type: ignore[arg-type]
            try:
                values[side][seed] = figures[f"{prefix}.{side}[seed={seed}]"] = reads.value(sample, seed)
            except MetricProblem as p:
                return p.verdict, f"{side} (seed {seed}): {p}", None
    paired = bool(comp.paired)
    order = comp.seeds_of("a")
    a = [values["a"][s] for s in order]
    b = [values["b"][s] for s in order] if paired else list(values["b"].values())
    try:
        found = stats.compare_samples(a, b, paired=paired, claim=comp.test, alpha=comp.alpha, margin=comp.margin)
    except stats.NothingToTest as e:
        return "fail", f"{_quantity(check)}: {e}", None
    except ImportError as e:
        return "error", (f"a comparison needs scipy and numpy, which are not installed here ({e}); "
                         "install them: pip install scipy"), None
    found.seeds = order
    figures.update({f"{prefix}.a": found.mean_a, f"{prefix}.b": found.mean_b, f"{prefix}.diff": found.diff,
                    f"{prefix}.ci_low": found.ci[0], f"{prefix}.ci_high": found.ci[1],
                    f"{prefix}.p_value": found.p_value})
    return "pass" if stats.passed(found) else "fail", stats.sentence(found, _quantity(check)), found


# ---------------------------------------------------------------- confirmation on fresh seeds


def confirmation_runs(checks: Sequence[Check], seeds: Sequence[int]) -> list[Check]:
    """The seeded run checks of `checks` again, for the fresh `seeds` only (named '<check> (fresh seeds)', so their
    logs do not overwrite the first runs')."""
    return [c.model_copy(update={"seeds": list(seeds), "name": f"{c.name} (fresh seeds)"})
            for c in checks if c.run is not None and c.seeds]


def confirm_comparison(check: Check, first: Evidence, repo: Path, runs: Sequence[Evidence]) -> Evidence:
    """`first` (a passed comparison) with its confirmation: the same comparison on `confirm_seeds` alone, read
    after `runs` (`confirmation_runs`) wrote their files. It passes only when both pass; the evidence keeps both
    results (`comparison`, `confirmation`), both sentences and both sets of figures (the fresh seeds' under
    '<check>.confirm')."""
    comp = check.compare
    assert comp is not None and comp.confirm_seeds is not None
    start, figures, reads = time.monotonic(), dict(first.figures), Reads(repo)
    seeds = ", ".join(map(str, comp.confirm_seeds))
    if failed := [e for e in runs if not e.passed]:
        verdict: Verdict = "fail"
        detail = "; ".join(f"run check '{e.check}' {e.verdict}: {e.detail}" for e in failed)
        found = None
    else:
        verdict, detail, found = _test_comparison(check, comp.confirmation(), reads, figures, f"{check.name}.confirm")
    said = "confirmed" if verdict == "pass" else "not confirmed"
    return first.model_copy(update={
        "verdict": verdict, "detail": f"{first.detail}; on fresh seeds {seeds}: {said}: {detail}",
        "figures": figures, "confirmation": found, "sources": {**first.sources, **reads.sources},
        "wandb": unique([*first.wandb, *reads.runs]),
        "duration_s": round(first.duration_s + sum(e.duration_s for e in runs) + time.monotonic() - start, 3)})


# ---------------------------------------------------------------- report figures


def read_report(figures: Sequence[ReportFigure], repo: Path) -> list[ReportValue]:
    """Each report figure as read now (the gates' reader, `Reads`): its value, or the mean and sample std over
    its seeds; one that cannot be read is recorded as missing, with why, and never fails anything."""
    out = []
    for fig in figures:
        reads, per_seed = Reads(repo), {}
        shown = dict(name=fig.label, file=fig.file, key=fig.key)
        try:
            for seed in fig.seeds or [None]:
                per_seed[seed] = reads.value(fig, seed)
        except MetricProblem as p:
            where = f"seed {seed}: " if seed is not None else ""
            out.append(ReportValue(**shown, missing=f"{where}{p}"))
            continue
        if fig.seeds is None:
            out.append(ReportValue(**shown, value=per_seed[None], n=1))
            continue
        mean, std, _ = aggregate(list(per_seed.values()), "mean")
        if not (math.isfinite(mean) and math.isfinite(std)):
            out.append(ReportValue(**shown, missing=f"the mean or std of {fig.key} over seeds is not a finite number"))
            continue
        out.append(ReportValue(**shown, value=mean, std=std if len(per_seed) > 1 else None, n=len(per_seed),
                               per_seed=per_seed))
    return out


def with_report(evidence: list[Evidence], values: list[ReportValue]) -> list[Evidence]:
    """`evidence` with the report figures on its last item (`records.report_values` finds them anywhere)."""
    if not values or not evidence:
        return evidence
    return [*evidence[:-1], evidence[-1].model_copy(update={"report": values})]


def _quantity(check: Check) -> str:
    """What a comparison compares, for its sentence: the key, or both keys when the sides differ."""
    comp = check.compare
    assert comp is not None
    return comp.a.key if comp.a.key == comp.b.key else f"{comp.a.key} vs {comp.b.key}"


# ---------------------------------------------------------------- entry points


def run_check(
    check: Check,
    repo: Path | str,
    *,
    env_allow: Iterable[str] = (),
    default_timeout_s: float,
    log_dir: Path | None = None,
    commit: str | None = None,
    on_line: Callable[[str], None] | None = None,
    launch: Launch = run_in_group,
    labels: Mapping[str, str] | None = None,
) -> Evidence:
    """Run one check in `repo`; `commit` (the HEAD it ran at) is stamped on the evidence. `labels`
    (RALPH_FEATURE, RALPH_PHASE) join the command's environment, so its runs can say what they are for."""
    repo = Path(repo)
    if check.run is not None:
        log_path = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_path = log_dir / f"{slug(check.name)}.log"
        ev = run_command_check(
            check, repo, env_allow=env_allow, labels=labels or {}, timeout_s=check.timeout_s or default_timeout_s,
            log_path=log_path, on_line=on_line, launch=launch,
        )
    elif check.compare is not None:
        ev = run_compare_check(check, repo)
    else:
        ev = run_metric_check(check, repo)
    ev.commit, ev.check_sha256 = commit, check.digest
    return ev


def run_checks(
    checks: Sequence[Check],
    repo: Path | str,
    *,
    env_allow: Iterable[str] = (),
    default_timeout_s: float,
    log_dir: Path | None = None,
    commit: str | None = None,
    reporter: Reporter | None = None,
    launch: Launch = run_in_group,
    labels: Mapping[str, str] | None = None,
) -> list[Evidence]:
    """Run every check in order (a failure does not skip the rest: all evidence is recorded)."""
    out = []
    for i, check in enumerate(checks):
        if reporter:
            reporter.started(check, i, len(checks))
        ev = run_check(
            check, repo, env_allow=env_allow, default_timeout_s=default_timeout_s, log_dir=log_dir, commit=commit,
            on_line=reporter.line if reporter else None, launch=launch, labels=labels,
        )
        if reporter:
            reporter.finished(ev)
        out.append(ev)
    return out


