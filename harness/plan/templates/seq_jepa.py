"""`ralph init --template seq-jepa`: the seq-JEPA research plan (steps 0-6) as a PRD.

Phases 0-2 are spelled out with features whose checks call the repository's own `lab` CLI (`LAB`); phases 3-6 carry
their goals and get features when the earlier results are in. Every learning gate compares with
a control, never with a number an untrained network could reach: the untrained twin (`init.*`,
same seed, views and probes; `lab eval` writes them), or an ablation over the same seeds, by a
paired t-test (`compare` checks); the teacherless-vs-baseline check still reads `lab diff`.
"""

from __future__ import annotations

from typing import Any

from harness.plan.prd import PRD, parse_prd

# Every check runs the repository's own lab, never one installed in the checks' Python (ralph-lab's `lab`, or a
# pip-installed copy): until the tree holds lab/cli.py the check fails, and PYTHONPATH=. puts the checkout's lab/
# before site-packages (checks run with PYTHONSAFEPATH=1, docs/quickstart.md). Issue 24: `lab data check shapes`
# passed S0-DATA in an empty repository.
LAB = "test -f lab/cli.py && PYTHONPATH=. python -m lab.cli"
LAB_TESTS = {"name": "lab tests", "run": "test -d lab && PYTHONPATH=. python -m pytest -q tests/lab", "timeout_s": 1200}
SHAPES = {"name": "shapes data", "run": f"{LAB} data check shapes", "timeout_s": 300}


SEEDS = [0, 1, 2, 3, 4]  # a learning claim is judged on at least 5 seeds (docs/statistics.md)


def _train_eval(name: str, config: str, run: str, sets: str = "", seeds: bool = False) -> list[dict[str, Any]]:
    """Checks that train a run, then evaluate it once (the eval check, not `lab train`, writes results.json)."""
    extra: dict[str, Any] = {"seeds": SEEDS} if seeds else {}
    seed_set = " --set train.seed={seed}" if seeds else ""
    return [
        {"name": f"{name} train", "run": f"{LAB} train {config} --overwrite --set eval.at_end=false --set name={run}{seed_set}{sets}", "timeout_s": 1800,
         **extra},
        {"name": f"{name} eval", "run": f"{LAB} eval runs/{run}", "timeout_s": 900, **extra},
    ]


def _gate(name: str, run: str, key: str, op: str, value: float, seeds: bool = False) -> dict[str, Any]:
    check: dict[str, Any] = {"name": name, "metric": {"file": f"runs/{run}/results.json", "key": key, "op": op,
                                                      "value": value}}
    if seeds:
        check.update(seeds=SEEDS)  # the mean over the seeds
    return check


def _compare(name: str, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
    """A paired t-test over SEEDS that run/key `a` is greater than run/key `b` (docs/statistics.md)."""
    (run_a, key_a), (run_b, key_b) = a, b
    return {"name": name, "compare": {"a": {"file": f"runs/{run_a}/results.json", "key": key_a},
                                      "b": {"file": f"runs/{run_b}/results.json", "key": key_b},
                                      "seeds": SEEDS, "paired": True, "test": "greater"}}


def _learned(name: str, run: str, metric: str) -> dict[str, Any]:
    """`metric` of the trained run above its untrained twin's (`init.*`, same seed, views and probes)."""
    return _compare(name, (run, f"eval.{metric}"), (run, f"init.{metric}"))


def _diff(name: str, a: str, b: str, key: str, out: str) -> dict[str, Any]:
    """`lab diff` of `key` between runs a-s{seed} and b-s{seed} over SEEDS (mean difference and spread) → out."""
    runs = " ".join(f"--{side} runs/{prefix}-s{i}/results.json" for side, prefix in (("a", a), ("b", b)) for i in SEEDS)
    return {"name": name, "run": f"{LAB} diff {runs} --key {key} --out {out}", "timeout_s": 120}


PLAN: dict[str, Any] = {
    "version": 1,
    "project": "seq-jepa-lab",
    "description": (
        "seq-JEPA and its variants (teacherless with coding rate, CRATE and ToST aggregators, streaming, "
        "local learning), verified step by step on embedded data first. Science reference: seq-JEPA "
        "(Ghaemi, Muller, Bakhtiari; NeurIPS 2025; arXiv 2505.03176)."
    ),
    "defaults": {"max_attempts": 3, "attempt_timeout_s": 3600, "check_timeout_s": 900, "env_allow": [],
                 "protected": ["tests/lab/**", "lab/eval/**"]},
    "phases": [
        {"id": 0, "name": "Foundations: data, views, probes",
         "goal": "Embedded datasets, batched on-device views with known actions, and evaluation probes that give "
                 "known answers on synthetic features.",
         "exit": [LAB_TESTS], "approval": True},
        {"id": 1, "name": "Baseline seq-JEPA (EMA target)",
         "goal": "Reproduce the paper's central finding on embedded data: action conditioning raises equivariance "
                 "(r2_equi) while the aggregate stays invariant (linacc_agg well above chance).",
         "entry": [SHAPES], "exit": [LAB_TESTS], "approval": True},
        {"id": 2, "name": "Teacherless seq-JEPA with coding rate",
         "goal": "Replace the EMA target with a stop-gradient target plus a coding-rate term and show it does not "
                 "collapse (RankMe) and matches the baseline's probes within the seed spread.",
         "entry": [SHAPES], "exit": [LAB_TESTS], "approval": True},
        {"id": 3, "name": "CRATE aggregator",
         "goal": "Swap the transformer aggregator for CRATE (MSSA + ISTA blocks); compare probes, equivariance and "
                 "rank with the baseline at equal parameters.", "approval": True},
        {"id": 4, "name": "ToST aggregator",
         "goal": "Token Statistics Transformer aggregator (linear-time attention); same comparison as CRATE.",
         "approval": True},
        {"id": 5, "name": "Streaming and continual seq-JEPA",
         "goal": "Single-pass streaming training with a replay buffer; measure forgetting across task splits.",
         "approval": True},
        {"id": 6, "name": "Local learning",
         "goal": "Layer-local predictive losses (local coding rate over a temporal window) instead of end-to-end "
                 "backpropagation; compare with the baseline.", "approval": True},
    ],
    "features": [
        {"id": "S0-DATA", "phase": 0, "title": "Embedded datasets load with documented shapes",
         "description": "Procedural shapes and scikit-learn digits, no download; `lab data check` reports them.",
         "acceptance": ["`lab data check shapes` and `lab data check digits` exit 0 and print shapes and classes"],
         "verify": [SHAPES, {"name": "digits data", "run": f"{LAB} data check digits", "timeout_s": 300}]},
        {"id": "S0-TESTS", "phase": 0, "title": "Views, actions and probes tested on known answers",
         "description": "Batched views with relative actions; linear/equivariance/RankMe probes on synthetic data.",
         "acceptance": ["relative-action algebra (composition of rotations) is tested",
                        "a separable set gives ~100% linear accuracy, noise gives chance, a linear map gives R2~1"],
         "depends_on": ["S0-DATA"], "verify": [LAB_TESTS]},
        {"id": "S1-SMOKE", "phase": 1, "title": "Baseline smoke run learns above chance",
         "description": "Small ConvNet, few steps, on shapes; finishes in minutes on a CPU.",
         "acceptance": ["experiments/step1-baseline/smoke.yaml exists and trains in under 2 minutes on CPU",
                        "runs/step1-smoke/results.json has the documented flat keys"],
         "verify": [*_train_eval("smoke", "experiments/step1-baseline/smoke.yaml", "step1-smoke"),
                    _gate("beats its untrained twin", "step1-smoke", "gain.linacc_agg", ">", 0.0),
                    {"name": "lab gates", "run": f"{LAB} gate runs/step1-smoke --config experiments/step1-baseline/smoke.yaml"}],
         "notes": "gain.linacc_agg: z_AGG probe accuracy of the trained run minus its untrained twin's."},
        {"id": "S1-QUICK", "phase": 1, "title": "Baseline quick run over five seeds",
         "description": "The quick config (<= 15 min CPU) over seeds 0-4; gates are paired t-tests against the "
                        "untrained twin.",
         "acceptance": ["experiments/step1-baseline/README.md reports linacc_agg, linacc_enc, r2_equi, leakage and "
                        "RankMe as mean +- std over the five seeds, with run ids"],
         "depends_on": ["S1-SMOKE"],
         "verify": [*_train_eval("quick", "experiments/step1-baseline/quick.yaml", "step1-quick-s{seed}", seeds=True),
                    _learned("invariance learned", "step1-quick-s{seed}", "linacc_agg"),
                    _learned("equivariance learned", "step1-quick-s{seed}", "r2_equi")],
         "notes": "trained above its untrained twin, seed by seed: a paired t-test at alpha 0.05."},
        {"id": "S1-ACTION", "phase": 1, "title": "Action conditioning raises equivariance over the no-action ablation",
         "description": "Same quick config with model.act_cond=false, same seeds and budget.",
         "acceptance": ["r2_equi with actions exceeds the ablation's, seed by seed (a paired t-test)",
                        "README states the difference, its confidence interval and the p-value"],
         "depends_on": ["S1-QUICK"],
         # Both arms run here: metric files are set aside before a feature's checks run (judge/freshness.py), so
         # a comparison cannot read S1-QUICK's runs.
         "verify": [*_train_eval("actions", "experiments/step1-baseline/quick.yaml", "step1-act-s{seed}", seeds=True),
                    *_train_eval("no-action", "experiments/step1-baseline/quick.yaml", "step1-noact-s{seed}",
                                 sets=" --set model.act_cond=false", seeds=True),
                    _compare("actions raise equivariance", ("step1-act-s{seed}", "eval.r2_equi"),
                             ("step1-noact-s{seed}", "eval.r2_equi"))]},
        {"id": "S2-RATE", "phase": 2, "title": "Coding-rate loss matches its sanity values",
         "description": "R(Z) = 1/2 logdet(I + d/(n eps^2) Z Z^T) on unit-norm columns, with the argument named "
                        "eps_sq (codebases disagree on eps vs eps^2).",
         "acceptance": ["tests pin the closed forms: isotropic (d/2) log(1 + 1/eps^2), full collapse "
                        "1/2 log(1 + d/eps^2); invariance to rotations; finite gradients at collapse"],
         "verify": [{"name": "coding-rate tests", "run": "test -d lab && PYTHONPATH=. python -m pytest -q tests/lab -k coding_rate", "timeout_s": 600}]},
        {"id": "S2-TEACHERLESS", "phase": 2, "title": "Teacherless + coding rate learns without collapse, as the baseline does",
         "description": "Stop-gradient target plus the coding-rate term, quick config, five seeds.",
         "acceptance": ["no seed collapses (eval.collapsed: RankMe and mean cosine of z and of z_AGG)",
                        "z_AGG gains over the untrained twin beyond the seed spread",
                        "its gain is not below the baseline's by more than the two groups' spread"],
         "depends_on": ["S2-RATE", "S1-QUICK"],
         "verify": [*_train_eval("teacherless", "experiments/step2-teacherless/quick.yaml", "step2-tl-s{seed}",
                                 seeds=True),
                    _gate("no collapse", "step2-tl-s{seed}", "eval.collapsed", "<=", 0.0, seeds=True),
                    _learned("invariance learned", "step2-tl-s{seed}", "linacc_agg"),
                    _diff("teacherless vs baseline", "step2-tl", "step1-quick", "gain.linacc_agg", "runs/step2-vs-step1.json"),
                    {"name": "not below the baseline beyond the spread",
                     "metric": {"file": "runs/step2-vs-step1.json", "key": "diff_plus_spread", "op": ">", "value": 0.0}}]},
    ],
}


def seq_jepa(project: str | None = None) -> PRD:
    data = {**PLAN, "project": project or PLAN["project"]}
    return parse_prd(data, "seq-jepa template")
