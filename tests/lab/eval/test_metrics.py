"""Known-answer tests for the probe, R² and RankMe functions."""

import numpy as np
import pytest
import torch

from lab.eval import collapse_stats, equivariance_r2, leakage_action_r2, leakage_class_accuracy, linear_probe_accuracy, r2_scores, rankme


def blobs(n: int, d: int, classes: int, spread: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * spread
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def test_separable_classes_give_full_accuracy():
    x, y = blobs(1200, 32, 4, spread=6.0)
    assert linear_probe_accuracy(x[:900], y[:900], x[900:], y[900:]) > 0.99


def test_noise_features_give_chance_accuracy():
    _, y = blobs(2000, 32, 4, spread=6.0)
    noise = torch.randn(2000, 32, generator=torch.Generator().manual_seed(1))
    acc = linear_probe_accuracy(noise[:1500], y[:1500], noise[1500:], y[1500:])
    assert 0.15 < acc < 0.35


def test_probe_accepts_numpy_and_rejects_mismatched_labels():
    x, y = blobs(200, 8, 2, spread=6.0)
    assert linear_probe_accuracy(x.numpy(), y.numpy(), x.numpy(), y.numpy()) > 0.95
    with pytest.raises(ValueError, match="train_y must be"):
        linear_probe_accuracy(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        linear_probe_accuracy(x, torch.zeros(200, dtype=torch.long), x, y)
    with pytest.raises(ValueError, match="NaN"):
        linear_probe_accuracy(x * float("nan"), y, x, y)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_known_linear_map_gives_r2_near_one(head):
    x, _ = blobs(1500, 24, 3, spread=1.0)
    a = x @ torch.randn(24, 4, generator=torch.Generator().manual_seed(2))
    r = equivariance_r2(x[:1200], a[:1200], x[1200:], a[1200:], head=head, hidden=128, epochs=30)
    assert r["r2_sklearn"] > 0.95 and r["r2_global"] > 0.95
    assert len(r["r2_per_dim"]) == 4


def test_random_targets_give_r2_near_zero():
    x, _ = blobs(2000, 16, 3, spread=1.0)
    a = torch.randn(2000, 3, generator=torch.Generator().manual_seed(3))
    r = equivariance_r2(x[:1500], a[:1500], x[1500:], a[1500:], head="linear")
    assert abs(r["r2_sklearn"]) < 0.05 and abs(r["r2_global"]) < 0.05


def test_r2_variants_differ_when_output_scales_differ():
    # Output 0 has variance 100 and is predicted exactly; output 1 has variance 1 and is predicted
    # by its mean. The per-output average is 0.5; the global variant is dominated by output 0.
    g = torch.Generator().manual_seed(4)
    y = torch.stack([10 * torch.randn(5000, generator=g), torch.randn(5000, generator=g)], 1)
    pred = torch.stack([y[:, 0], torch.full((5000,), float(y[:, 1].mean()))], 1)
    r = r2_scores(y, pred)
    assert r["r2_per_dim"] == pytest.approx([1.0, 0.0], abs=1e-9)
    assert r["r2_sklearn"] == pytest.approx(0.5, abs=1e-9)
    ss_res = float(((y[:, 1] - y[:, 1].mean()) ** 2).sum())
    assert r["r2_global"] == pytest.approx(1 - ss_res / float(((y - y.mean()) ** 2).sum()), rel=1e-6)
    assert r["r2_global"] > 0.98


def test_r2_global_counts_output_means_as_explained():
    # Offsets between output means are variance about the global mean, so the SIE variant credits
    # a predictor that only gets the per-output means right; sklearn's average gives it 0.
    y = torch.randn(1000, 2, generator=torch.Generator().manual_seed(5)) + torch.tensor([-5.0, 5.0])
    pred = y.mean(0, keepdim=True).expand_as(y)
    r = r2_scores(y, pred)
    assert r["r2_sklearn"] == pytest.approx(0.0, abs=1e-9)
    assert r["r2_global"] > 0.9


def test_equivariance_r2_rejects_bad_shapes_and_head():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match="train_x has 10 rows but train_a has 9"):
        equivariance_r2(x, torch.randn(9, 2), x, torch.randn(10, 2), head="linear")
    with pytest.raises(ValueError, match="head must be"):
        equivariance_r2(x, torch.randn(10, 2), x, torch.randn(10, 2), head="tree")
    with pytest.raises(ValueError, match=r"\(N, D\) matrix"):
        equivariance_r2(x, torch.randn(10), x, torch.randn(10, 2))


def test_rankme_of_rank_k_matrix_with_equal_singular_values_is_k():
    g = torch.Generator().manual_seed(6)
    u, _ = torch.linalg.qr(torch.randn(400, 7, generator=g))
    v, _ = torch.linalg.qr(torch.randn(64, 7, generator=g))
    assert rankme(3.0 * u @ v.T) == pytest.approx(7.0, rel=1e-4)


def test_rankme_bounds_and_collapse():
    g = torch.Generator().manual_seed(7)
    low = torch.randn(500, 5, generator=g) @ torch.randn(5, 64, generator=g)
    assert 3.0 < rankme(low) <= 5.0 + 1e-3
    assert rankme(torch.randn(2000, 32, generator=g)) > 28.0
    assert rankme(np.zeros((50, 8))) == pytest.approx(1.0, abs=1e-4)


def test_leakage_probes_read_the_representation_given():
    x, y = blobs(800, 16, 3, spread=6.0)
    assert leakage_class_accuracy(x[:600], y[:600], x[600:], y[600:]) > 0.95
    a = torch.randn(800, 2, generator=torch.Generator().manual_seed(8))
    r = leakage_action_r2(x[:600], a[:600], x[600:], a[600:], head="linear")
    assert r["r2_sklearn"] < 0.1


def test_collapse_stats_separate_collapsed_from_spread_features():
    g = torch.Generator().manual_seed(9)
    spread = collapse_stats(torch.randn(4000, 64, generator=g))
    assert spread["normalised_std"] == pytest.approx(1 / 8, rel=0.05)
    assert abs(spread["mean_cosine"]) < 0.01
    collapsed = collapse_stats(torch.ones(100, 64) + 1e-4 * torch.randn(100, 64, generator=g))
    assert collapsed["normalised_std"] < 1e-3 and collapsed["mean_cosine"] > 0.999
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert collapse_stats(opposite)["mean_cosine"] == pytest.approx(-1.0)


def test_subspace_metrics_separate_view_and_sample_variation() -> None:
    from lab.eval.subspace import subspace_metrics

    torch.manual_seed(0)
    n, v, d = 400, 4, 16
    identity = torch.zeros(n, 1, d)
    identity[..., :4] = torch.randn(n, 1, 4)  # samples differ in dims 0-3
    pose = torch.zeros(n, v, d)
    pose[..., 8:10] = torch.randn(n, v, 2)  # views differ in dims 8-9 …
    pose -= pose.mean(1, keepdim=True)  # … around each sample's own mean
    m = subspace_metrics(identity + pose)
    assert m["rank_inv_eff"] == pytest.approx(4, rel=0.15) and m["rank_eq_eff"] == pytest.approx(2, rel=0.15)
    assert m["overlap"] == pytest.approx(0.0, abs=1e-6)  # orthogonal subspaces
    assert m["var_eq_frac"] == pytest.approx(2 * 0.75 / (2 * 0.75 + 4), rel=0.15)  # E‖e‖² = 2·(V−1)/V
    assert sum(m["spectrum_eq"]) == pytest.approx(1.0) and len(m["spectrum_inv"]) == d
    invariant = subspace_metrics(identity.expand(n, v, d))
    assert invariant["var_eq_frac"] == pytest.approx(0.0, abs=1e-12)
    same = subspace_metrics(identity + identity.squeeze(1)[:, None] * torch.randn(n, v, 1) * 0.5)
    assert same["overlap"] > 0.9  # views vary along the sample directions
    with pytest.raises(ValueError, match="V ≥ 2"):
        subspace_metrics(torch.randn(5, 1, 3))


def test_collapse_reason_names_the_figure() -> None:
    from lab.eval.health import collapse_reason

    torch.manual_seed(0)
    same = torch.ones(64, 16) + 1e-4 * torch.randn(64, 16)
    assert collapse_reason(rankme(same), collapse_stats(same)).startswith("collapsed: RankMe(z)")
    spread = torch.randn(256, 16)
    assert collapse_reason(rankme(spread), collapse_stats(spread)) is None
    assert "mean pairwise cosine" in collapse_reason(10.0, {"mean_cosine": 0.995})


def test_a_collapsed_aggregate_marks_the_run_collapsed_even_when_z_is_spread(tmp_path) -> None:
    """Issue 22, finding 6: `eval.collapsed` read z alone, so a run whose z_AGG was one point passed."""
    from lab.config import parse_config
    from lab.eval.features import Features
    from lab.evaluate import compute_metrics
    from tests.lab.conftest import tiny_config

    cfg = parse_config(tiny_config(tmp_path))
    m, g = cfg.data.seq_len, torch.Generator().manual_seed(0)

    def features(n: int) -> Features:
        z = torch.randn(n, 4, 16, generator=g)  # spread encoder features of 4 views
        agg = torch.ones(n, 8) + 1e-5 * torch.randn(n, 8, generator=g)  # every sequence: the same z_AGG
        return Features(z=z, agg={k: agg for k in (1, m, 3)}, agg_single=torch.randn(n, 4, 8, generator=g),
                        action=torch.randn(n, 2, generator=g), labels=torch.arange(n) % 4)

    out = compute_metrics(cfg, features(96), features(48), ["sin", "cos"])
    assert out["collapsed"] == 1.0 and out["collapsed_agg"] == 1.0 and out["collapsed_enc"] == 0.0
    assert out["collapse_reason"].startswith("collapsed: RankMe(z_AGG)")
