"""Evaluation: frozen probes, equivariance R², RankMe, leakage, and metric gates.

Every metric is a pure function of tensors; the definitions live in each module's docstring. The metrics are
re-exported here on first use (PEP 562), not at import: `lab gate` imports lab.eval.gates, which needs neither
torch nor scikit-learn, and comparing two numbers took 3 s while this package imported them (issue 24).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it
_EXPORTS = {
    "collapse_stats": "lab.eval.health",
    "equivariance_r2": "lab.eval.equivariance",
    "leakage_action_r2": "lab.eval.leakage",
    "leakage_class_accuracy": "lab.eval.leakage",
    "linear_probe_accuracy": "lab.eval.probes",
    "r2_scores": "lab.eval.equivariance",
    "rankme": "lab.eval.rank",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lab.eval' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
