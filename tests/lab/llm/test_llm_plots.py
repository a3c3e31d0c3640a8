"""Figure details that made plots unreadable before: annotation contrast, sweeps that hide the optimum."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from lab.llm.plots import _text_colour
from lab.llm.sweep import caption


def test_annotations_are_dark_on_light_cells_and_light_on_dark() -> None:
    fig, ax = plt.subplots()
    image = ax.imshow(np.array([[0.0, 1.0]]), cmap="magma")
    assert (_text_colour(image, 0.0), _text_colour(image, 1.0)) == ("white", "black")
    plt.close(fig)


def test_sweep_caption_says_when_the_best_value_is_at_the_grid_edge() -> None:
    edge = caption({"param": "lr", "values": [1e-4, 1e-3, 1e-2], "final_val_loss": [5.3, 5.2, 5.1]})
    assert "lr=0.01 reaches the lowest" in edge and "edge of the grid" in edge and "extend --values" in edge
    inside = caption({"param": "lr", "values": [1e-4, 1e-3, 1e-2], "final_val_loss": [5.3, 5.1, math.nan]})
    assert "lr=0.001 reaches the lowest" in inside and "edge" not in inside and "diverged: 0.01" in inside
