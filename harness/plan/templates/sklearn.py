"""`ralph init --template sklearn`: a small, generic experiment (scikit-learn, or anything that writes JSON) in
two phases — a baseline that beats a trivial control, then a treatment that beats the baseline.

The results.json convention its gates read: one flat JSON object per run, at `runs/<name>-s<seed>/results.json`,
written by `run.py` (the repository's code, not ralph's):

    {"seed": 0, "config": "configs/baseline.yaml", "test.accuracy": 0.95, "control.accuracy": 0.10}

`test.*` are the model's figures on held-out data; `control.*` the same figure of a trivial model on the same
split (scikit-learn's DummyClassifier), so the first gate compares with a control, not with a constant. Every
check fails in a repository that has no code yet: `run.py`, `configs/` and `tests/` are the agent's to write.
"""

from __future__ import annotations

from typing import Any

from harness.plan.prd import PRD, parse_prd

SEEDS = [0, 1, 2, 3, 4]  # a learning claim is judged on at least 5 seeds (docs/statistics.md)
TESTS = {"name": "tests", "run": "PYTHONPATH=. python -m pytest -q tests", "timeout_s": 600}


def _runs(name: str) -> dict[str, Any]:
    """`run.py` once per seed, writing runs/<name>-s<seed>/results.json."""
    return {"name": f"{name} runs", "seeds": SEEDS, "timeout_s": 900,
            "run": f"PYTHONPATH=. python run.py --config configs/{name}.yaml --seed {{seed}} "
                   f"--out runs/{name}-s{{seed}}/results.json"}


def _beats(name: str, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
    """A paired t-test over SEEDS that `a` (run, key) is greater than `b`."""
    return {"name": name, "compare": {"a": {"file": f"runs/{a[0]}-s{{seed}}/results.json", "key": a[1]},
                                      "b": {"file": f"runs/{b[0]}-s{{seed}}/results.json", "key": b[1]},
                                      "seeds": SEEDS, "paired": True, "test": "greater"}}


PLAN: dict[str, Any] = {
    "version": 1,
    "project": "experiment",
    "description": ("Does the treatment improve on the baseline? State the question here. Each run writes "
                    "runs/<name>-s<seed>/results.json: flat keys, test.accuracy (held-out) and control.accuracy "
                    "(a trivial model on the same split); see harness/plan/templates/sklearn.py."),
    "defaults": {"max_attempts": 3, "attempt_timeout_s": 3600, "check_timeout_s": 900, "protected": ["tests/**"]},
    "phases": [
        {"id": 1, "name": "Baseline", "goal": "A tested data split and a baseline model that beats a trivial control "
                                              "over five seeds.", "exit": [TESTS], "approval": True},
        {"id": 2, "name": "Treatment", "goal": "The treatment against the baseline on the same seeds and splits.",
         "exit": [TESTS], "approval": True},
    ],
    "features": [
        {"id": "DATA", "phase": 1, "title": "Data loads and splits reproducibly",
         "description": "A function returns train and test splits for a seed; tests pin their shapes, that the two "
                        "splits do not overlap and that a seed gives the same split twice.",
         "acceptance": ["tests/ covers shapes, disjoint splits and determinism per seed"],
         "verify": [TESTS]},
        {"id": "BASELINE", "phase": 1, "title": "Baseline beats a trivial control",
         "description": "run.py trains configs/baseline.yaml for a seed and writes results.json with test.accuracy "
                        "and control.accuracy (DummyClassifier on the same split).",
         "acceptance": ["run.py --config configs/baseline.yaml --seed S --out PATH writes the documented keys",
                        "test.accuracy above control.accuracy, seed by seed (a paired t-test)"],
         "depends_on": ["DATA"],
         "verify": [_runs("baseline"), _beats("beats the control", ("baseline", "test.accuracy"),
                                              ("baseline", "control.accuracy"))]},
        {"id": "TREATMENT", "phase": 2, "title": "Treatment beats the baseline",
         "description": "configs/treatment.yaml changes one thing against the baseline; same seeds, same splits "
                        "(the baseline runs again in this feature's checks: a gate reads only what they write).",
         "acceptance": ["the README states the difference over the seeds, its confidence interval and p-value"],
         "depends_on": ["BASELINE"],
         "verify": [_runs("baseline"), _runs("treatment"), _beats("beats the baseline", ("treatment", "test.accuracy"),
                                               ("baseline", "test.accuracy"))]},
    ],
}


def sklearn(project: str | None = None) -> PRD:
    return parse_prd({**PLAN, "project": project or PLAN["project"]}, "sklearn template")
