"""Split-name and label validation shared by the readers."""

from __future__ import annotations

import numpy as np


def check_split(name: str, split: str, allowed: tuple[str, ...]) -> None:
    """ValueError naming the valid splits when split is not one of them."""
    if split not in allowed:
        raise ValueError(f"{name} has no split {split!r}; choose one of {', '.join(allowed)}")


def check_labels(name: str, labels: np.ndarray, num_classes: int) -> None:
    """ValueError when a label falls outside [0, num_classes)."""
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name}: labels must lie in [0, {num_classes}), found {labels.min()}…{labels.max()}")
