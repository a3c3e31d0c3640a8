"""Evaluation: frozen probes, equivariance R², RankMe, leakage, and metric gates.

Every metric is a pure function of tensors; the definitions live in each module's docstring.
"""

from lab.eval.equivariance import equivariance_r2, r2_scores
from lab.eval.health import collapse_stats
from lab.eval.leakage import leakage_action_r2, leakage_class_accuracy
from lab.eval.probes import linear_probe_accuracy
from lab.eval.rank import rankme

__all__ = [
    "collapse_stats",
    "equivariance_r2",
    "leakage_action_r2",
    "leakage_class_accuracy",
    "linear_probe_accuracy",
    "r2_scores",
    "rankme",
]
