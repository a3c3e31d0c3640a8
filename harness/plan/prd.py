"""PRD.json (version 1): pydantic models, loading with actionable errors, saving, snarktank import.

Two layers of validation, both reported together so one run of `ralph validate` lists every
problem: the pydantic models (types, unknown/missing fields) and `reference_problems` (ids,
phases, dependencies), which works on the raw JSON so it runs even when the models reject it.
"""

from __future__ import annotations

import difflib
import hashlib
import heapq
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from harness.errors import RalphError
from harness.fileio import atomic_write_text
from harness.plan.patterns import expand

Op = Literal[">=", ">", "<=", "<", "=="]
Executor = Literal["local", "ray"]
Agg = Literal["mean", "mean-std"]
Test = Literal["greater", "less", "noninferior", "equivalent"]
SEED = "{seed}"


class PRDError(RalphError):
    """The PRD cannot be used; `problems` holds one line per problem, each led by its JSON path."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        n = len(problems)
        super().__init__(f"{source} is not a valid PRD ({n} problem{'s' * (n != 1)}):\n{lines}")


class UnknownIdError(RalphError):
    """A phase or feature id given on the command line is not in the PRD."""


class _Strict(BaseModel):
    # defer_build: a model builds its validator when first used, not at import (`ralph status` starts faster,
    # and the nested models of a PRD are built once, inside the PRD's own validator)
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Source(_Strict):
    """Where one number is read: a key in a JSON file the verification produced."""

    file: str = Field(min_length=1, description="JSON file relative to the repository; may contain {seed}")
    key: str = Field(
        min_length=1,
        description="Dotted key; a flat key that itself contains dots (\"eval.linacc_agg\") is found first",
    )


class MetricGate(Source):
    """A threshold on one number in a JSON file the verification produced."""

    op: Op
    value: float = Field(allow_inf_nan=False, strict=True, description="A finite threshold, a JSON number "
                         "(\"0.93\" in quotes is refused, not read as 0.93)")


class Resources(_Strict):
    """What one Ray job reserves (Ray's own entrypoint_num_gpus / _num_cpus / _memory)."""

    gpus: float = Field(0, ge=0)
    cpus: float = Field(1, ge=0)
    memory_gb: float | None = Field(None, gt=0)


class Sample(Source):
    """One side of a comparison: a key read once per seed ({seed} in `file` or in `key`)."""

    seeds: list[int] | None = Field(
        None, min_length=2, description="This side's own seeds, when they differ from the comparison's `seeds` "
        "(then the sides are two independent groups: \"paired\": true needs the same seeds on both)",
    )


def claim_text(test: Test, margin: float | None) -> str:
    """What a comparison with this `test` must show, as a formula: 'a > b', '|a - b| < 0.02', ..."""
    if test in ("greater", "less"):
        return "a > b" if test == "greater" else "a < b"
    return f"a > b - {margin:g}" if test == "noninferior" else f"|a - b| < {margin:g}"


class Comparison(_Strict):
    """A treatment `a` against a control `b` over seeds, decided by a named statistical test at level `alpha`:
    a paired t-test (seed s of a with seed s of b) or Welch's t-test (two groups); docs/statistics.md."""

    a: Sample = Field(description="The treatment: {file, key} read for each seed")
    b: Sample = Field(description="The control it is compared with: {file, key} read for each seed")
    seeds: list[int] | None = Field(
        None, min_length=2, description="Seeds of both sides (at least 2; a side's own `seeds` overrides them)"
    )
    paired: bool | None = Field(
        None, description="true: seed s of a is compared with seed s of b (paired t-test on the differences); "
        "false: two independent groups (Welch's t-test). Unset means false, and `ralph validate` flags it when "
        "both sides have the same seeds",
    )
    test: Test = Field(
        description="What must be shown about the mean difference a - b: 'greater' (a > b), 'less' (a < b), "
        "'noninferior' (a > b - margin) or 'equivalent' (|a - b| < margin, two one-sided tests)"
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Significance level: the check passes when p < alpha")
    margin: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="How much worse a may be ('noninferior') or how far apart a "
        "and b may be ('equivalent'), in the key's units; required by those two tests, refused by the others",
    )
    confirm_seeds: list[int] | None = Field(
        None, min_length=2, description="Fresh seeds, used by neither side: after the comparison passes on its seeds, "
        "the seeded run checks of its list run again for these, and the same comparison must pass on them alone "
        "(docs/statistics.md, \"Confirmation on fresh seeds\")",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Comparison:
        for name, side in (("a", self.a), ("b", self.b)):
            seeds = side.seeds or self.seeds
            if seeds is None:
                raise ValueError(f"no seeds for '{name}': set \"seeds\": [0, 1, 2, 3, 4] in 'compare' (both sides) "
                                 f"or in '{name}'")
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"{name}: seeds {seeds} repeat a value")
            if SEED not in side.file and SEED not in side.key:
                raise ValueError(f"{name}: neither 'file' nor 'key' has a {SEED} placeholder, so every seed would "
                                 f"read the same number; e.g. \"file\": \"runs/x-s{SEED}/results.json\"")
        if self.paired and sorted(self.seeds_of("a")) != sorted(self.seeds_of("b")):
            raise ValueError(f"\"paired\": true compares seed s of a with seed s of b, but a's seeds "
                             f"{self.seeds_of('a')} and b's {self.seeds_of('b')} differ; give both the same seeds "
                             "or set \"paired\": false")
        needs_margin = self.test in ("noninferior", "equivalent")
        if needs_margin and self.margin is None:
            raise ValueError(f"'{self.test}' needs a 'margin' (> 0, in the key's units): how much worse a may be "
                             "than b ('noninferior') or how far apart they may be ('equivalent')")
        if not needs_margin and self.margin is not None:
            raise ValueError(f"'margin' applies only to 'noninferior' and 'equivalent', not to '{self.test}'")
        if self.confirm_seeds is not None:
            used = sorted(set(self.seeds_of("a")) | set(self.seeds_of("b")))
            if len(set(self.confirm_seeds)) != len(self.confirm_seeds):
                raise ValueError(f"confirm_seeds {self.confirm_seeds} repeat a value")
            if reused := sorted(set(self.confirm_seeds) & set(used)):
                verb = "is" if len(reused) == 1 else "are"
                raise ValueError(f"confirm_seeds must be fresh, but {reused} also {verb} among the comparison's seeds "
                                 f"{used}")
        return self

    def confirmation(self) -> Comparison:
        """The same comparison on `confirm_seeds` alone (both sides), without a further confirmation."""
        assert self.confirm_seeds is not None
        return self.model_copy(update={"seeds": self.confirm_seeds, "confirm_seeds": None,
                                       "a": self.a.model_copy(update={"seeds": None}),
                                       "b": self.b.model_copy(update={"seeds": None})})

    def seeds_of(self, side: Literal["a", "b"]) -> list[int]:
        """The seeds `side` is read for: its own, or the comparison's."""
        sample = self.a if side == "a" else self.b
        seeds = sample.seeds or self.seeds
        assert seeds is not None  # the validator refuses a side without seeds
        return seeds

    @property
    def same_seeds(self) -> bool:
        """Both sides were run with the same seeds (so they could be paired)."""
        return sorted(self.seeds_of("a")) == sorted(self.seeds_of("b"))


class Check(_Strict):
    """One verification step: a shell command (`run`), a metric gate (`metric`) or a comparison with a control
    (`compare`): exactly one of them."""

    name: str = Field(min_length=1)
    run: str | None = Field(None, description="Shell command run in the repository; exit code 0 passes")
    metric: MetricGate | None = None
    compare: Comparison | None = Field(None, description="A treatment against a control over seeds, passed by a "
                                       "statistical test (docs/statistics.md)")
    seeds: list[int] | None = Field(
        None, min_length=1, description="Run once per seed, substituting {seed}; metric gates aggregate over them "
        "(a comparison's seeds go inside 'compare')"
    )
    agg: Agg | None = Field(
        None, description="Metric gates with seeds: 'mean' (default) or 'mean-std' (mean minus std must pass)"
    )
    timeout_s: float | None = Field(None, gt=0, description="Overrides defaults.check_timeout_s (per seed; "
                                    "a Ray job is stopped at it)")
    executor: Executor | None = Field(None, description="Where a `run` check runs: 'local' (default, in ralph's own "
                                      "process tree) or 'ray' (one job per seed on the Ray cluster, docs/cluster.md)")
    resources: Resources | None = Field(None, description="What each Ray job reserves on the cluster")
    artifacts: list[str] | None = Field(None, min_length=1, description="Globs (repository-relative) a Ray job's "
                                        "files that come back besides the feature's metric files; may use {seed}")

    @model_validator(mode="after")
    def _executor_fields(self) -> Check:
        if (self.resources is not None or self.artifacts is not None) and self.executor != "ray":
            raise ValueError("'resources' and 'artifacts' apply only to a check with \"executor\": \"ray\"")
        if self.executor is not None and self.run is None:
            raise ValueError("'executor' applies only to a 'run' check (metric gates and comparisons are read by "
                             "ralph)")
        return self

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        if sum(x is not None for x in (self.run, self.metric, self.compare)) != 1:
            raise ValueError("a check needs exactly one of 'run' (a command), 'metric' (a gate) or 'compare' "
                             "(a treatment against a control)")
        if self.compare is not None:
            if self.seeds is not None:
                raise ValueError("a comparison's seeds go inside it: \"compare\": {\"seeds\": [...], ...}")
            if self.agg is not None:
                raise ValueError("'agg' applies only to a metric check with 'seeds' (a comparison runs its 'test')")
            return self
        target = self.run if self.run is not None else self.metric.file  # type: ignore[union-attr]
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds {self.seeds} repeat a value")
        if self.seeds is not None and SEED not in target:
            what = "command" if self.run is not None else "metric file"
            raise ValueError(f"'seeds' is set but the {what} has no {SEED} placeholder to substitute")
        if self.seeds is None and SEED in target:
            raise ValueError(f"uses {SEED} but has no 'seeds' list, e.g. \"seeds\": [0, 1, 2]")
        if self.agg is not None and (self.metric is None or self.seeds is None):
            raise ValueError("'agg' applies only to a metric check with 'seeds'")
        return self

    def read_files(self) -> list[str]:
        """Repository-relative files this check reads, seeds substituted: a gate's or a comparison's (none for a
        `run` check). The verification must write them itself (judge/freshness.py)."""
        if self.metric is not None:
            return [seeded(self.metric.file, s) for s in self.seeds or [None]]
        if self.compare is not None:
            c, fresh = self.compare, self.compare.confirm_seeds or []
            paths = [seeded(side.file, s) for side, seeds in ((c.a, c.seeds_of("a")), (c.b, c.seeds_of("b")))
                     for s in [*seeds, *fresh]]
            return list(dict.fromkeys(paths))  # {seed} may be in the key only: one file for every seed
        return []

    @property
    def on_ray(self) -> bool:
        return self.executor == "ray"

    @property
    def kind(self) -> Literal["run", "metric", "compare"]:
        return "run" if self.run is not None else "metric" if self.metric is not None else "compare"

    @property
    def digest(self) -> str:
        """sha256 of the check's canonical JSON (sorted keys, unset fields left out): evidence is bound
        to it, so a check edited after it passed no longer vouches for the feature."""
        body = self.model_dump(mode="json", exclude_none=True)
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def checks_digest(checks: Iterable[Check | str]) -> str:
    """One digest for an ordered list of checks (or of their `Check.digest`s): what a verdict is bound to."""
    digests = [c if isinstance(c, str) else c.digest for c in checks]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


class ReportFigure(Source):
    """A figure shown with a feature's verdict (the board, the approval panel, `ralph report`, the commit) that
    never decides it: read from a file the feature's checks wrote, once per seed when it has `seeds`."""

    seeds: list[int] | None = Field(
        None, min_length=1, description="Read once per seed ({seed} in 'file' or 'key'); shown as the mean and "
        "the sample standard deviation (n-1)",
    )
    name: str | None = Field(None, min_length=1, description="The label shown (default: the key)")

    @model_validator(mode="after")
    def _seeded(self) -> ReportFigure:
        placeholder = SEED in self.file or SEED in self.key
        if self.seeds is not None and not placeholder:
            raise ValueError(f"'seeds' is set but neither 'file' nor 'key' has a {SEED} placeholder")
        if self.seeds is None and placeholder:
            raise ValueError(f"uses {SEED} but has no 'seeds' list, e.g. \"seeds\": [0, 1, 2]")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds {self.seeds} repeat a value")
        return self

    @property
    def label(self) -> str:
        return self.name or self.key


# A report entry is an object or a bare key; the tags name the branch so that an error speaks of one of them only
# (and `_pydantic_problems` drops them from the JSON path).
REPORT_TAGS = ("{file, key}", "bare key")
ReportEntry = Annotated[
    Annotated[ReportFigure, Tag(REPORT_TAGS[0])] | Annotated[str, Tag(REPORT_TAGS[1])],
    Discriminator(lambda v: REPORT_TAGS[1] if isinstance(v, str) else REPORT_TAGS[0]),
]


def gate_sources(checks: Iterable[Check]) -> list[tuple[str, list[int] | None]]:
    """The distinct (file, seeds) the metric gates and comparisons of `checks` read: where a report figure given
    as a bare key is looked up (seeds None when the file has no {seed})."""
    found: list[tuple[str, list[int] | None]] = []
    for c in checks:
        sides = [(c.metric.file, c.seeds)] if c.metric else []
        if c.compare:
            sides += [(c.compare.a.file, c.compare.seeds_of("a")), (c.compare.b.file, c.compare.seeds_of("b"))]
        for file, seeds in sides:
            entry = (file, seeds if SEED in file else None)
            if entry not in found:
                found.append(entry)
    return found


def _confirmable(checks: list[Check]) -> None:
    """A comparison with `confirm_seeds` needs seeded run checks in its list to run again (locally: a confirmation
    is not yet run on Ray); ValueError otherwise."""
    if not any(c.compare and c.compare.confirm_seeds for c in checks):
        return
    names = [c.name for c in checks if c.compare and c.compare.confirm_seeds]
    if not any(c.run is not None and c.seeds for c in checks):
        raise ValueError(f"{', '.join(names)}: 'confirm_seeds' runs the list's seeded run checks again for the fresh "
                         "seeds, and there is none; add the check that writes its files, e.g. {\"name\": \"train\", "
                         "\"run\": \"lab train x.yaml seed={seed}\", \"seeds\": [0, 1, 2]}")
    if ray := [c.name for c in checks if c.on_ray]:
        raise ValueError(f"{', '.join(names)}: 'confirm_seeds' is not supported with Ray checks yet ({', '.join(ray)} "
                         "has \"executor\": \"ray\"); run them locally or drop 'confirm_seeds'")



# ---------------------------------------------------------------- optimize: a metric search (docs/prd.md, "Optimize")


class OptimizeBudget(_Strict):
    """When the search stops: trials (agent attempts) and wall clock; optionally each trial's checks' wall clock."""

    attempts: int = Field(ge=1, description="Trials (agent attempts, crashes included) at most")
    hours: float = Field(gt=0, allow_inf_nan=False, description="Wall clock of the whole search, baseline included")
    trial_hours: float | None = Field(None, gt=0, allow_inf_nan=False, description="Compute per trial: each of its "
                                      "seeded runs is stopped at trial_hours (a run over it fails: a crash trial)")


class Holdout(_Strict):
    """Paths the agent can neither read nor list (hidden in its sandbox), evaluated only by the harness."""

    paths: list[str] = Field(min_length=1, description="Repository-relative paths (files or directories) hidden "
                             "from the agent and from the visible checks; only the holdout run sees them")
    run: str = Field(min_length=1, description="Command the harness runs after the visible checks, once per seed "
                     "when it has {seed}; it reads the trained outputs and the holdout paths")
    metric: Source = Field(description="The holdout figure: {file, key} the run writes (per seed with {seed})")
    acknowledge_unenforced: bool = Field(False, description="With --sandbox none nothing hides the holdout from the "
                                         "agent: `ralph validate` and `ralph run` refuse such a holdout unless this is "
                                         "true, saying the holdout is then a convention, not a boundary")

    @model_validator(mode="after")
    def _inside(self) -> Holdout:
        for p in self.paths:
            if p.startswith("/") or ".." in Path(p).parts or p in (".", ""):
                raise ValueError(f"holdout path '{p}' must be a path inside the repository (relative, no '..')")
        return self


class Optimize(_Strict):
    """A metric search judged by the harness: each trial's candidate is kept only when a paired test over `seeds`
    shows it beats the incumbent at `alpha`; the winner is confirmed against the baseline on `confirm_seeds`."""

    metric: Source = Field(description="The number searched: {file, key} written by the feature's seeded run "
                           "checks, with {seed} in file or key")
    direction: Literal["max", "min"] = Field(description="'max': higher is better; 'min': lower is better")
    seeds: list[int] = Field(min_length=2, description="Seeds every trial (and the baseline) runs: the feature's "
                             "seeded run checks run for exactly these, and the keep rule pairs them")
    confirm_seeds: list[int] = Field(min_length=2, description="Fresh seeds, never used to choose: the final "
                                     "incumbent against the baseline, once, at the end")
    budget: OptimizeBudget
    stop_after_discards: int | None = Field(None, ge=1, description="Stop after this many trials in a row that were "
                                            "not kept (discards and crashes)")
    target: float | None = Field(None, allow_inf_nan=False, description="Stop once the incumbent's mean reaches it "
                                 "(>= for 'max', <= for 'min')")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Level of the paired one-sided t-test of the keep rule and "
                         "of the confirmation")
    holdout: Holdout | None = None
    fixed: list[str] = Field(default_factory=list, description="Globs the agent may not change during the search "
                             "(the code that computes the metric, say), besides defaults.protected")

    @model_validator(mode="after")
    def _seeds(self) -> Optimize:
        for name, seeds in (("seeds", self.seeds), ("confirm_seeds", self.confirm_seeds)):
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"{name} {seeds} repeat a value")
        if reused := sorted(set(self.seeds) & set(self.confirm_seeds)):
            raise ValueError(f"confirm_seeds must be fresh (never used to choose), but {reused} also in seeds")
        if SEED not in self.metric.file and SEED not in self.metric.key:
            raise ValueError(f"metric: neither 'file' nor 'key' has a {SEED} placeholder, so every seed would read the "
                             f"same number; e.g. \"file\": \"runs/opt-s{SEED}/results.json\"")
        return self

    @property
    def better(self) -> Test:
        """The claim a candidate must show against the incumbent: 'greater' for max, 'less' for min."""
        return "greater" if self.direction == "max" else "less"


def _optimizable(checks: list[Check]) -> None:
    """An optimize feature's checks: at least one seeded run check (it writes the metric), no comparison (the
    search is the comparison); ValueError otherwise."""
    if not any(c.run is not None and c.seeds for c in checks):
        raise ValueError("optimize: the feature needs a seeded run check that writes the metric, e.g. {\"name\": "
                         "\"train\", \"run\": \"python train.py {seed}\", \"seeds\": [0, 1]} (it runs for the "
                         "optimize seeds)")
    if compared := [c.name for c in checks if c.compare is not None]:
        raise ValueError(f"optimize: {', '.join(compared)} is a 'compare' check; in a search the keep rule is the "
                         "comparison (candidate against incumbent), so drop it")


class Phase(_Strict):
    id: int = Field(ge=0)
    name: str = Field(min_length=1)
    goal: str = ""
    entry: list[Check] = Field(default_factory=list, description="Must pass before the loop starts the phase")
    exit: list[Check] = Field(default_factory=list, description="Must pass (with every feature) to finish it")
    approval: bool = Field(True, description="Stop for a human `ralph approve` after the exit criteria pass")
    after: list[int] | None = Field(
        None,
        description="Phases that must be approved (those that ask for approval) before this one starts; "
        "default: the phase before it in the file. `[]` starts a parallel track.",
    )

    @model_validator(mode="after")
    def _confirmations(self) -> Phase:
        _confirmable(self.entry)
        _confirmable(self.exit)
        return self


class Feature(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="e.g. FEAT-010")
    phase: int
    title: str = Field(min_length=1)
    description: str = ""
    acceptance: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    verify: list[Check] = Field(default_factory=list, description="The checks that decide `passes`")
    passes: bool = Field(False, description="Written by the harness only, from its own verification")
    notes: str = ""
    report: list[ReportEntry] = Field(
        default_factory=list, description="Figures shown with the verdict but never gating it, read from files the "
        "feature's checks wrote: {\"file\", \"key\"} (with \"seeds\" and {seed}: mean and std; \"name\": the "
        "label), or a bare key, read from the one file (per seed) the feature's metric gates and comparisons read",
    )
    optimize: Optimize | None = Field(None, description="A metric search instead of one attempt to pass: `ralph "
                                      "run` runs trials, keeps what beats the incumbent beyond noise, confirms the "
                                      "winner on fresh seeds (docs/prd.md, \"Optimize\")")

    @model_validator(mode="after")
    def _report_and_confirmations(self) -> Feature:
        _confirmable(self.verify)
        if self.optimize is not None:
            _optimizable(self.verify)
        labels = [f.label for f in self.report_figures()]
        if repeated := sorted({x for x in labels if labels.count(x) > 1}):
            raise ValueError(f"report: {', '.join(repeated)} named twice; give each figure its own \"name\"")
        return self

    def report_figures(self) -> list[ReportFigure]:
        """`report` with each bare key resolved to the file (and seeds) the feature's gates read; ValueError when
        that is not one file."""
        sources = gate_sources(self.verify)
        out = []
        for entry in self.report:
            if isinstance(entry, ReportFigure):
                out.append(entry)
                continue
            if len(sources) != 1:
                read = ", ".join(f for f, _ in sources) or "none"
                raise ValueError(f"report: '{entry}' is a bare key, which is read from the one file the feature's "
                                 f"metric gates and comparisons read, but they read {len(sources)} ({read}); say "
                                 f"which: {{\"file\": \"runs/x/results.json\", \"key\": \"{entry}\"}}")
            file, seeds = sources[0]
            out.append(ReportFigure(file=file, key=entry, seeds=seeds))
        return out

    def report_files(self) -> list[str]:
        """Repository-relative files the report figures read, seeds substituted."""
        return list(dict.fromkeys(seeded(f.file, s) for f in self.report_figures() for s in f.seeds or [None]))


class Defaults(_Strict):
    max_attempts: int = Field(3, ge=1)
    attempt_timeout_s: float = Field(3600, gt=0)
    check_timeout_s: float = Field(900, gt=0)
    env_allow: list[str] = Field(
        default_factory=list, description="Secret-looking environment variables checks and agents may see"
    )
    protected: list[str] = Field(
        default_factory=list, description="Globs (relative to the repository) the agent must not change"
    )
    check_network: bool = Field(
        False, description="Whether checks reach the network under a sandbox (to download a dataset, say). Off: a "
        "check, which runs the agent's code, has only its own loopback (no cluster, no service on the host)."
    )
    outputs: list[str] = Field(
        default_factory=list,
        description="Ignored top-level directories the checks and the agent write run outputs to (e.g. \"runs\"). "
        "Every other ignored directory that exists before an attempt (datasets, caches) is read-only to both "
        "under a sandbox. The directories of the files the gates read are outputs without being listed.",
    )


class PRD(_Strict):
    schema_: str | None = Field(None, alias="$schema", description="Optional JSON Schema path for editors")
    version: Literal[1] = 1
    project: str = Field(min_length=1)
    description: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    phases: list[Phase] = Field(min_length=1)
    features: list[Feature] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    def output_dirs(self) -> set[str]:
        """Top-level directories checks may write besides the checkout: `defaults.outputs`, and the first
        component of every file a gate, comparison, report figure or optimize search (its metric, its holdout's)
        reads."""
        read = [path for f in self.features for c in f.verify for path in c.read_files()]
        read += [path for f in self.features for path in f.report_files()]
        searches = [f.optimize for f in self.features if f.optimize is not None]
        read += [o.metric.file for o in searches] + [o.holdout.metric.file for o in searches if o.holdout]
        in_dirs = [p.strip("/") for p in read if "/" in p.strip("/")]  # a file at the top is in the checkout
        return {p.strip("/").split("/")[0] for p in [*self.defaults.outputs, *in_dirs]}

    def phase(self, phase_id: int) -> Phase:
        for p in self.phases:
            if p.id == phase_id:
                return p
        raise UnknownIdError(f"phase {phase_id} does not exist (phases: {', '.join(str(p.id) for p in self.phases)})")

    def feature(self, feature_id: str) -> Feature:
        for f in self.features:
            if f.id == feature_id:
                return f
        known = difflib.get_close_matches(feature_id, [f.id for f in self.features], n=3)
        hint = f"; did you mean {', '.join(known)}?" if known else ""
        raise UnknownIdError(f"feature '{feature_id}' does not exist{hint}")

    def prerequisites(self, phase: Phase) -> list[Phase]:
        """The phases whose approval `phase` waits for: `after`, or else the one before it in the file."""
        if phase.after is not None:
            return [self.phase(pid) for pid in phase.after]
        index = self.phases.index(phase)
        return self.phases[index - 1 : index] if index > 0 else []

    def features_in_phase(self, phase_id: int) -> list[Feature]:
        """The phase's features in dependency order (file order among independent ones)."""
        return self.dependency_order([f for f in self.features if f.phase == phase_id])

    def dependency_order(self, features: Iterable[Feature] | None = None) -> list[Feature]:
        """`features` (default all) sorted so each comes after its dependencies; stable otherwise.

        Dependencies outside the given set are taken as already handled.
        """
        chosen = list(self.features if features is None else features)
        index = {f.id: i for i, f in enumerate(chosen)}
        waiting = {f.id: {d for d in f.depends_on if d in index} for f in chosen}
        dependents: dict[str, list[str]] = {}
        for f in chosen:
            for d in waiting[f.id]:
                dependents.setdefault(d, []).append(f.id)
        ready = [i for i, f in enumerate(chosen) if not waiting[f.id]]
        heapq.heapify(ready)
        ordered: list[Feature] = []
        while ready:
            f = chosen[heapq.heappop(ready)]
            ordered.append(f)
            for other in dependents.get(f.id, []):
                waiting[other].discard(f.id)
                if not waiting[other]:
                    heapq.heappush(ready, index[other])
        if len(ordered) != len(chosen):  # only reachable for a PRD built without validation
            raise PRDError("PRD", ["features: dependency cycle; run `ralph validate` for details"])
        return ordered

    def upstream(self, feature_id: str) -> set[str]:
        """Every feature `feature_id` depends on, directly or transitively."""
        by_id = {f.id: f for f in self.features}
        seen: set[str] = set()
        stack = list(by_id[feature_id].depends_on)
        while stack:
            fid = stack.pop()
            if fid not in seen and fid in by_id:
                seen.add(fid)
                stack.extend(by_id[fid].depends_on)
        return seen


# ---------------------------------------------------------------- validation


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class describing the object at `loc` inside a PRD (for listing allowed fields)."""

    def inner(tp: Any) -> type[BaseModel] | None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        return next((m for m in map(inner, get_args(tp)) if m), None)

    model: type[BaseModel] | None = PRD
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = inner(field.annotation) if field else None
    return model


def _allowed_fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _pydantic_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(part for part in e["loc"] if part not in REPORT_TAGS)
        if e["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            allowed = _allowed_fields(model) if model else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            msg = f"unknown field{hint} (allowed: {', '.join(allowed)})" if allowed else "unknown field"
        elif e["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = e["msg"].removeprefix("Value error, ")
        problems.append(f"{_path(loc)}: {msg}")
    return problems


def reference_problems(data: dict[str, Any]) -> list[str]:
    """Problems across objects in raw PRD data: duplicate ids, unknown phases/dependencies, cycles."""
    problems: list[str] = []
    phases = [p for p in data.get("phases") or [] if isinstance(p, dict)]
    feats = [(i, f) for i, f in enumerate(data.get("features") or []) if isinstance(f, dict)]

    phase_ids: dict[Any, int] = {}
    for i, p in enumerate(data.get("phases") or []):
        if isinstance(p, dict) and "id" in p:
            if p["id"] in phase_ids:
                problems.append(f"phases[{i}].id: duplicate phase id {p['id']} (also phases[{phase_ids[p['id']]}])")
            phase_ids.setdefault(p["id"], i)
        for group in ("entry", "exit"):
            problems += _duplicate_check_names(p.get(group) if isinstance(p, dict) else None, f"phases[{i}].{group}")

    for i, p in enumerate(phases):
        after = p.get("after") if isinstance(p.get("after"), list) else []
        for j, pid in enumerate(after):
            if pid == p.get("id"):
                problems.append(f"phases[{i}].after[{j}]: a phase cannot wait for itself")
            elif pid not in phase_ids:
                known = ", ".join(str(k) for k in phase_ids)
                problems.append(f"phases[{i}].after[{j}]: phase {pid!r} does not exist (phases: {known})")

    order = {pid: rank for rank, pid in enumerate(p.get("id") for p in phases)}
    feature_at: dict[str, int] = {}
    for i, f in feats:
        fid = f.get("id")
        if isinstance(fid, str):
            if fid in feature_at:
                problems.append(f"features[{i}].id: duplicate feature id '{fid}' (also features[{feature_at[fid]}])")
            feature_at.setdefault(fid, i)
        if "phase" in f and phase_ids and f["phase"] not in phase_ids:
            known = ", ".join(str(p) for p in phase_ids)
            problems.append(f"features[{i}].phase: phase {f['phase']!r} does not exist (phases: {known})")
        problems += _duplicate_check_names(f.get("verify"), f"features[{i}].verify")

    graph: dict[str, list[str]] = {}
    by_index = dict(feats)
    for i, f in feats:
        deps = f.get("depends_on") if isinstance(f.get("depends_on"), list) else []
        for j, dep in enumerate(deps):
            where = f"features[{i}].depends_on[{j}]"
            if dep == f.get("id"):
                problems.append(f"{where}: a feature cannot depend on itself")
            elif dep not in feature_at:
                close = difflib.get_close_matches(str(dep), list(feature_at), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(f"{where}: unknown feature {dep!r}{hint}")
            else:
                dep_phase, own_phase = by_index[feature_at[dep]].get("phase"), f.get("phase")
                if order.get(dep_phase, -1) > order.get(own_phase, 1 << 30):
                    problems.append(
                        f"{where}: '{dep}' is in phase {dep_phase}, which comes after this feature's phase {own_phase}"
                    )
        if isinstance(f.get("id"), str):
            graph[f["id"]] = [d for d in deps if d in feature_at and d != f["id"]]
    problems += [f"features: dependency cycle {' -> '.join(c)}" for c in _cycles(graph)]
    return problems


def _duplicate_check_names(checks: Any, where: str) -> list[str]:
    seen: set[str] = set()
    out = []
    for j, c in enumerate(checks if isinstance(checks, list) else []):
        name = c.get("name") if isinstance(c, dict) else None
        if isinstance(name, str):
            if name in seen:
                out.append(f"{where}[{j}].name: duplicate check name '{name}' (evidence is recorded by name)")
            seen.add(name)
    return out


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One path per distinct dependency cycle, e.g. ['A', 'B', 'A']."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    found: dict[frozenset[str], list[str]] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                found.setdefault(frozenset(cycle), cycle)
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
    return list(found.values())


def parse_prd(data: Any, source: str = "PRD.json") -> PRD:
    """Validate already-decoded JSON; raise `PRDError` listing every problem found."""
    if not isinstance(data, dict):
        raise PRDError(source, [f"(top level): expected a JSON object, got {type(data).__name__}"])
    problems: list[str] = []
    prd = None
    try:
        prd = PRD.model_validate(data)
    except ValidationError as err:
        problems += _pydantic_problems(err)
    problems += reference_problems(data)
    if problems:
        raise PRDError(source, problems)
    assert prd is not None
    return prd


def load_prd(path: Path | str) -> PRD:
    """Read and validate a PRD file. Malformed JSON is reported with line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PRDError(str(path), ["file not found; create one with `ralph init` or `ralph import`"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PRDError(str(path), [f"cannot read: {e}"]) from None
    return parse_prd(decode_json(text, str(path)), str(path))


def decode_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise PRDError(source, [f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"]) from None


def prd_warnings(prd: PRD, repo: Path | None = None) -> list[str]:
    """Legal but probably unintended choices, shown by `ralph validate`; with `repo`, also the
    protected patterns that match nothing there (usually a typo: nothing would be protected)."""
    out = []
    for pattern in prd.defaults.protected if repo is not None else []:
        if not expand(repo, [pattern]):
            out.append(f"defaults.protected: '{pattern}' matches nothing in {repo} (a typo?); it only stops the "
                       "agent from creating such paths")
    for phase in prd.phases:
        if phase.approval and not prd.features_in_phase(phase.id):
            out.append(f"phase {phase.id}: asks for approval but has no features, so `ralph run` never reaches its "
                       "approval gate; add its features, or set \"approval\": false")
    for f in prd.features:
        if not f.verify:
            out.append(f"{f.id}: no 'verify' checks, so ralph can never mark it passing; add at least one")
        for c in f.verify:
            if c.agg == "mean-std" and c.metric and c.metric.op in ("<", "<="):
                out.append(f"{f.id} / {c.name}: 'mean-std' with '{c.metric.op}' is the lenient side for an upper bound")
    return out


def unenforced_holdout(feature: Feature, sandbox: str) -> str | None:
    """Why `feature`'s holdout would not be hidden under `sandbox` ("none") and is not acknowledged, or None."""
    opt = feature.optimize
    if sandbox != "none" or opt is None or opt.holdout is None or opt.holdout.acknowledge_unenforced:
        return None
    return (f"optimize.holdout: with --sandbox none nothing hides {', '.join(opt.holdout.paths)} from the agent (it "
            "could read the holdout and fit it); run with --sandbox bwrap, or set \"acknowledge_unenforced\": true in "
            "the holdout to accept that it is a convention, not a boundary")


def unenforced_holdouts(prd: PRD, sandbox: str) -> list[str]:
    """`unenforced_holdout` for every feature, each led by its JSON path (`ralph validate` refuses them)."""
    return [f"features[{i}].{problem}" for i, f in enumerate(prd.features)
            if (problem := unenforced_holdout(f, sandbox)) is not None]


def prd_json(prd: PRD) -> str:
    """Serialised PRD: fields the file had (or the code set), in model order, 2-space indent."""
    return json.dumps(prd.model_dump(mode="json", by_alias=True, exclude_unset=True), indent=2) + "\n"


def save_prd(prd: PRD, path: Path | str) -> None:
    """Write a validated PRD atomically (refuses to write one that would not load back)."""
    parse_prd(prd.model_dump(mode="json", by_alias=True), str(path))
    atomic_write_text(Path(path), prd_json(prd))


def json_schema() -> dict[str, Any]:
    """JSON Schema of PRD.json for editors (`ralph schema`)."""
    schema = PRD.model_json_schema(by_alias=True)
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "ralph PRD.json (version 1)"}


# ---------------------------------------------------------------- snarktank import


class _Story(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    title: str
    description: str = ""
    acceptanceCriteria: list[str] = Field(default_factory=list)
    priority: int | None = None
    passes: bool = False
    notes: str = ""


class _SnarktankPRD(BaseModel):
    model_config = ConfigDict(defer_build=True)

    project: str
    branchName: str = ""
    description: str = ""
    userStories: list[_Story] = Field(min_length=1)


def import_snarktank(data: Any, source: str = "prd.json") -> PRD:
    """Convert a snarktank-style prd.json into one phase, features ordered by `priority`.

    Stories carry no commands, so the features get no checks; `ralph validate` says so. A story
    the agent had marked `passes: true` imports as not passing (ralph only trusts its own checks)
    with a note saying so.
    """
    if not isinstance(data, dict):
        raise PRDError(source, ["(top level): expected a JSON object with 'userStories'"])
    try:
        src = _SnarktankPRD.model_validate(data)
    except ValidationError as err:
        raise PRDError(source, [f"{_path(e['loc'])}: {e['msg']}" for e in err.errors()]) from None
    ranked = sorted(enumerate(src.userStories), key=lambda t: (t[1].priority is None, t[1].priority or 0, t[0]))
    features = []
    for _, s in ranked:
        notes = s.notes
        if s.passes:
            notes = (notes + "\n" if notes else "") + "imported as passing (self-reported); ralph will verify"
        features.append(
            Feature(
                id=s.id, phase=1, title=s.title, description=s.description,
                acceptance=s.acceptanceCriteria, passes=False, notes=notes,
            )
        )
    prd = PRD(
        project=src.project,
        description=src.description,
        phases=[Phase(id=1, name=src.branchName or "Imported user stories", goal=src.description)],
        features=features,
    )
    problems = reference_problems(prd.model_dump(mode="json"))
    if problems:
        raise PRDError(source, problems)
    return prd


def seeded(text: str, seed: int | None) -> str:
    """`text` with {seed} replaced (unchanged when `seed` is None)."""
    return text if seed is None else text.replace(SEED, str(seed))
