"""Continual metrics on hand-computed matrices, and the plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.train.stream_metrics import continual_summary, plot_continual


def test_forgetting_average_accuracy_and_gain() -> None:
    acc = [
        [0.5, 0.5, 0.5],  # untrained
        [0.9, 0.6, 0.5],  # after task 0
        [0.7, 0.9, 0.6],  # after task 1
        [0.6, 0.8, 0.9],  # after task 2
    ]
    out = continual_summary(acc)
    assert out["eval.avg_acc"] == pytest.approx((0.6 + 0.8 + 0.9) / 3)
    assert out["init.avg_acc"] == pytest.approx(0.5)
    assert out["gain.avg_acc"] == pytest.approx(out["eval.avg_acc"] - 0.5)
    assert out["eval.forgetting@task0"] == pytest.approx(0.9 - 0.6)  # best after learning it, minus final
    assert out["eval.forgetting@task1"] == pytest.approx(0.9 - 0.8)
    assert "eval.forgetting@task2" not in out  # the last task cannot have been forgotten yet
    assert out["eval.forgetting"] == pytest.approx(0.2)
    assert out["eval.acc@task2"] == pytest.approx(0.9)


def test_no_forgetting_when_accuracy_only_rises_and_the_untrained_row_is_not_a_peak() -> None:
    acc = [[0.99, 0.99], [0.6, 0.5], [0.7, 0.8]]
    out = continual_summary(acc)
    assert out["eval.forgetting"] == pytest.approx(-0.1)  # improved after it was learnt (backward transfer)
    assert out["gain.avg_acc"] < 0  # worse than untrained, whatever the forgetting says
    with pytest.raises(ValueError, match="matrix"):
        continual_summary([[0.5, 0.5], [0.6, 0.6]])


def test_plot_writes_a_png(tmp_path: Path) -> None:
    acc = [[0.5, 0.5], [0.8, 0.5], [0.7, 0.9]]
    curve = [{"seen": 0, "acc_all": 0.3, "acc_seen": 0.5}, {"seen": 64, "acc_all": 0.5, "acc_seen": 0.8, "task_end": True},
             {"seen": 128, "acc_all": 0.6, "acc_seen": 0.8, "task_end": True}]
    plot_continual(acc, curve, tmp_path / "p" / "stream.png", "test", num_classes=8)
    assert (tmp_path / "p" / "stream.png").stat().st_size > 1000


def test_probe_noise_is_the_forgetting_statistic_on_re_evaluations_of_one_network() -> None:
    from lab.train.stream_metrics import probe_noise

    final = [0.70, 0.80, 0.90]
    reevals = [[0.74, 0.78, 0.92], [0.71, 0.83, 0.88]]
    out = probe_noise(final, reevals)
    # task 0: best of the first 2 re-evaluations (T−1−0 = 2) − final; task 1: the first one (T−1−1 = 1)
    assert out["noise.forgetting"] == pytest.approx(((0.74 - 0.70) + (0.78 - 0.80)) / 2)
    assert out["noise.evals"] == 2 and out["noise.acc_std"] > 0
    with pytest.raises(ValueError, match="re-evaluation"):
        probe_noise(final, [])
