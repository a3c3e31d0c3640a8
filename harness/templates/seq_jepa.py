"""`ralph init --template seq-jepa`: the seq-JEPA research plan (steps 0-6) as a PRD.

Phases 0-2 are spelled out with features whose checks call the `lab` CLI; phases 3-6 carry
their goals and get features when the earlier results are in. Thresholds are starting points
(chance on the 8 procedural shape classes is 0.125) to be tightened once the first quick run
has measured the baseline.
"""

from __future__ import annotations

from typing import Any

from harness.prd import PRD, parse_prd

LAB_TESTS = {"name": "lab tests", "run": "pytest -q tests/lab", "timeout_s": 1200}
SHAPES = {"name": "shapes data", "run": "lab data check shapes", "timeout_s": 300}


def _train_eval(name: str, config: str, run: str, sets: str = "", seeds: bool = False) -> list[dict[str, Any]]:
    """Checks that train a run, then evaluate it once (the eval check, not `lab train`, writes results.json)."""
    extra: dict[str, Any] = {"seeds": [0, 1, 2]} if seeds else {}
    seed_set = " --set train.seed={seed}" if seeds else ""
    return [
        {"name": f"{name} train", "run": f"lab train {config} --overwrite --set eval.at_end=false --set name={run}{seed_set}{sets}", "timeout_s": 1800,
         **extra},
        {"name": f"{name} eval", "run": f"lab eval runs/{run}", "timeout_s": 900, **extra},
    ]


def _gate(name: str, run: str, key: str, op: str, value: float, seeds: bool = False) -> dict[str, Any]:
    check: dict[str, Any] = {"name": name, "metric": {"file": f"runs/{run}/results.json", "key": key, "op": op,
                                                      "value": value}}
    if seeds:
        check.update(seeds=[0, 1, 2], agg="mean-std")
    return check


def _mean_over_seeds(prefix: str) -> str:
    return f"[json.load(open(f'runs/{prefix}-s{{i}}/results.json'))['eval.r2_equi'] for i in (0, 1, 2)]"


ACTION_EFFECT = (
    "python -c \"import json, statistics as st; "
    f"a = st.mean({_mean_over_seeds('step1-quick')}); b = st.mean({_mean_over_seeds('step1-noact')}); "
    "print(f'r2_equi with actions {a:.3f}, without {b:.3f}'); raise SystemExit(0 if a > b else 1)\""
)

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
         "verify": [SHAPES, {"name": "digits data", "run": "lab data check digits", "timeout_s": 300}]},
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
                    _gate("above chance", "step1-smoke", "eval.linacc_agg", ">=", 0.25),
                    {"name": "lab gates", "run": "lab gate runs/step1-smoke --config experiments/step1-baseline/smoke.yaml"}],
         "notes": "Chance is 0.125 (8 shape classes)."},
        {"id": "S1-QUICK", "phase": 1, "title": "Baseline quick run over three seeds",
         "description": "The quick config (<= 15 min CPU) over seeds 0-2; gates use mean minus std.",
         "acceptance": ["experiments/step1-baseline/README.md reports linacc_agg, linacc_enc, r2_equi, leakage and "
                        "RankMe as mean +- std over the three seeds, with run ids"],
         "depends_on": ["S1-SMOKE"],
         "verify": [*_train_eval("quick", "experiments/step1-baseline/quick.yaml", "step1-quick-s{seed}", seeds=True),
                    _gate("invariance", "step1-quick-s{seed}", "eval.linacc_agg", ">=", 0.35, seeds=True),
                    _gate("equivariance", "step1-quick-s{seed}", "eval.r2_equi", ">=", 0.2, seeds=True)],
         "notes": "Thresholds are starting points; tighten after the first measured run."},
        {"id": "S1-ACTION", "phase": 1, "title": "Action conditioning raises equivariance over the no-action ablation",
         "description": "Same quick config with model.act_cond=false, same seeds and budget.",
         "acceptance": ["mean r2_equi with actions exceeds the ablation's", "README states the difference and the spread"],
         "depends_on": ["S1-QUICK"],
         "verify": [*_train_eval("no-action", "experiments/step1-baseline/quick.yaml", "step1-noact-s{seed}",
                                 sets=" --set model.act_cond=false", seeds=True),
                    {"name": "actions help equivariance", "run": ACTION_EFFECT}]},
        {"id": "S2-RATE", "phase": 2, "title": "Coding-rate loss matches its sanity values",
         "description": "R(Z) = 1/2 logdet(I + d/(n eps^2) Z Z^T) on unit-norm columns, with the argument named "
                        "eps_sq (codebases disagree on eps vs eps^2).",
         "acceptance": ["tests pin the closed forms: isotropic (d/2) log(1 + 1/eps^2), full collapse "
                        "1/2 log(1 + d/eps^2); invariance to rotations; finite gradients at collapse"],
         "verify": [{"name": "coding-rate tests", "run": "pytest -q tests/lab -k coding_rate", "timeout_s": 600}]},
        {"id": "S2-TEACHERLESS", "phase": 2, "title": "Teacherless + coding rate does not collapse",
         "description": "Stop-gradient target plus the coding-rate term, quick config, three seeds.",
         "acceptance": ["RankMe of z stays high", "linear probes within the baseline's seed spread"],
         "depends_on": ["S2-RATE"],
         "verify": [*_train_eval("teacherless", "experiments/step2-teacherless/quick.yaml", "step2-tl-s{seed}",
                                 seeds=True),
                    _gate("no collapse", "step2-tl-s{seed}", "eval.rankme_enc", ">=", 8, seeds=True),
                    _gate("invariance", "step2-tl-s{seed}", "eval.linacc_agg", ">=", 0.3, seeds=True)]},
    ],
}


def seq_jepa(project: str | None = None) -> PRD:
    data = {**PLAN, "project": project or PLAN["project"]}
    return parse_prd(data, "seq-jepa template")
