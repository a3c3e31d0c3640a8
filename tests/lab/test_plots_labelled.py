"""Plots a researcher reads (issue 22): every axis labelled, chance and control lines where they apply,
no loss term hidden under another, and `compare.png` showing the difference `lab compare` reports.

Each figure is caught as it is saved (Figure.savefig is wrapped), so the tests read the drawn axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import pytest

from lab.eval import plots as eval_plots
from lab.llm import plots as llm_plots
from lab.train.stream_metrics import plot_continual


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[matplotlib.figure.Figure]:
    figures, real = [], matplotlib.figure.Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    return figures


def _data_axes(fig: matplotlib.figure.Figure) -> list:
    """Axes that show data (not colorbars, not switched-off spare panels)."""
    return [ax for ax in fig.axes if ax.axison and ax.get_label() != "<colorbar>"]


def _assert_labelled(fig: matplotlib.figure.Figure) -> None:
    for ax in _data_axes(fig):
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())


def _hlines(ax) -> list[float]:
    return [line.get_ydata()[0] for line in ax.get_lines() if len(set(line.get_ydata())) == 1 and len(line.get_xdata()) == 2]


def test_each_loss_term_has_its_own_axes_and_the_probes_show_chance(tmp_path: Path, saved: list) -> None:
    history = [{"step": s, "loss": 1.0 / s, "loss/pred": 1.0 / s, "loss/rate": -50.0 + s, "probe/linacc_agg": 0.2,
                "probe/r2_equi": 0.5} for s in range(1, 6)]
    eval_plots._curves(history, tmp_path / "curves.png", chance=0.125)
    [fig] = saved
    _assert_labelled(fig)
    ylabels = [ax.get_ylabel() for ax in _data_axes(fig)]
    assert ylabels[:3] == ["total loss", "term pred", "term rate"]  # one term per axes: none hides under another
    assert 0.125 in _hlines(_data_axes(fig)[-1])


def test_compare_png_plots_the_difference_it_reports(tmp_path: Path, saved: list) -> None:
    values = {"act": {"eval.r2_equi": [0.97, 0.98, 0.99]}, "noact": {"eval.r2_equi": [0.95, 0.94, 0.96]}}
    eval_plots.plot_comparison(values, ["eval.r2_equi"], tmp_path / "compare.png",
                               {"eval.r2_equi": [-0.02, -0.04, -0.03]})
    [fig] = saved
    _assert_labelled(fig)
    diff = _data_axes(fig)[1]
    assert "noact − act" in diff.get_title() and 0 in _hlines(diff)  # zero: the no-difference line
    reported = [line.get_ydata()[0] for line in diff.get_lines() if line.get_marker() == "D"]
    assert reported == pytest.approx([0.95 - 0.98])  # the table's "noact − act" column


def test_the_stream_plot_shows_chance_and_the_untrained_twin(tmp_path: Path, saved: list) -> None:
    acc = [[0.5, 0.5], [0.9, 0.6], [0.7, 0.9]]
    curve = [{"seen": 0, "task": -1, "acc_all": 0.3, "acc_seen": None, "task_end": False},
             {"seen": 10, "task": 0, "acc_all": 0.5, "acc_seen": 0.9, "task_end": True},
             {"seen": 20, "task": 1, "acc_all": 0.6, "acc_seen": 0.6, "task_end": True}]
    plot_continual(acc, curve, tmp_path / "stream.png", "t", num_classes=4)
    [fig] = saved
    _assert_labelled(fig)
    assert {0.3, 0.25} <= set(_hlines(_data_axes(fig)[0]))  # the twin's first point and chance 1/4


def test_llm_probe_plot_shows_every_control(tmp_path: Path, saved: list) -> None:
    def accs(v):
        return {"val": [v, v + 0.1, v], "test": [v, v + 0.05, v]}

    results = {"probe_trained": {"w": accs(0.8)}, "probe_random_init": {"w": accs(0.6)},
               "probe_control_task": {"w": accs(0.55)}, "probe_majority": {"w": 0.6}, "probe_point": {"w": 1},
               "probe_selectivity": {"w": 0.3}}
    llm_plots.probes(results, tmp_path / "probes.png", "caption")
    [fig] = saved
    _assert_labelled(fig)
    labels = {line.get_label() for line in _data_axes(fig)[0].get_lines()}
    assert {"random-init twin (control)", "control task (control)", "majority class (chance)",
            "point chosen on validation"} <= labels


def test_llm_forgetting_and_sweep_plots_draw_their_controls(tmp_path: Path, saved: list) -> None:
    table = {"prose_loss": (4.0, 4.2), "code_loss": (5.0, 4.5), "prose_acc": (0.3, 0.28), "code_acc": (0.2, 0.25)}
    llm_plots.forgetting(table, tmp_path / "f.png", "c", "t", {"prose_loss": 3.9, "code_loss": 5.0, "prose_acc": 0.31,
                                                              "code_acc": 0.2})
    curve = {"val_steps": [0, 5], "val_loss": [5.0, 4.6]}
    llm_plots.sweep("lr", [1e-4, 1e-3], [curve, {"val_steps": [0, 5], "val_loss": [5.0, 4.4]}], [4.6, 4.4],
                    tmp_path / "s.png", "c")
    forget, sweep = saved
    for fig in saved:
        _assert_labelled(fig)
    assert any(p.get_label() == "control: same recipe on prose" for p in _data_axes(forget)[0].containers)
    assert all(5.0 in _hlines(ax) for ax in _data_axes(sweep))  # the base model's loss: every run's control


def test_a_series_over_budgets_draws_every_seed_and_the_mean_on_the_budgets_axis() -> None:
    """The learning-curve and split figures: each seed a dot, the mean with its interval, ticks at the budgets run."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PathCollection

    fig, ax = plt.subplots()
    seeds = [[0.1, 0.2, 0.3], [0.5, 0.7]]
    eval_plots.seeds_and_means(ax, [96, 384], seeds, [(0.0, 0.4), (0.4, 0.8)], "C0", "trained: mean, 90 % CI")
    eval_plots.steps_axis(ax, [96, 384])
    dots = [tuple(p) for c in ax.collections if isinstance(c, PathCollection) for p in c.get_offsets()]
    assert sorted(dots) == sorted((x, y) for x, ys in zip([96, 384], seeds) for y in ys)
    (mean_line,) = [line for line in ax.lines if line.get_marker() == "D"]
    assert list(mean_line.get_xdata()) == [96, 384] and list(mean_line.get_ydata()) == pytest.approx([0.2, 0.6])
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["96", "384"]
    assert ax.get_xlabel() == "training steps (batch 64)"
    plt.close(fig)
