"""Coding rate: the closed forms of reference §2.3, the ε² convention, numerics and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lab.losses.coding_rate import class_coding_rate, coding_rate, max_coding_rate


def test_coding_rate_isotropic_unit_features() -> None:
    z = torch.eye(512)  # ZᵀZ = (n/d)·I with n = d
    assert coding_rate(z, eps_sq=0.5).item() == pytest.approx(281.2447, abs=1e-3)
    assert coding_rate(z, 0.5).item() == pytest.approx(256 * math.log(3), rel=1e-5) == pytest.approx(max_coding_rate(512, 0.5))
    assert coding_rate(torch.eye(4), 0.5).item() == pytest.approx(2 * math.log(3), rel=1e-6)
    assert coding_rate(torch.eye(8), 0.2).item() == pytest.approx(7.1670, abs=1e-4)


def test_coding_rate_identical_features() -> None:
    z = torch.randn(1, 512).expand(100, -1)
    assert coding_rate(z, 0.5).item() == pytest.approx(0.5 * math.log(1 + 512 / 0.5), rel=1e-5)
    assert coding_rate(z, 0.5).item() == pytest.approx(3.4662, abs=1e-3)


@pytest.mark.parametrize(("d", "eps_sq", "expected"), [(4, 0.5, math.log(5)), (8, 0.2, 3.0445), (512, 0.5, 6.2403)])
def test_coding_rate_rank_r_collapse(d: int, eps_sq: float, expected: float) -> None:
    r, n = 2, 64
    basis = torch.linalg.qr(torch.randn(d, r))[0].T  # r orthonormal directions
    z = basis.repeat(n // r, 1)
    assert coding_rate(z, eps_sq).item() == pytest.approx(r / 2 * math.log(1 + d / (r * eps_sq)), rel=1e-5)
    assert coding_rate(z, eps_sq).item() == pytest.approx(expected, abs=1e-3)


def test_coding_rate_argument_is_eps_squared() -> None:
    z = torch.eye(16)
    assert coding_rate(z, eps_sq=0.25).item() == pytest.approx(8 * math.log(1 + 1 / 0.25), rel=1e-6)
    assert coding_rate(z, 0.25).item() != pytest.approx(8 * math.log(1 + 1 / 0.5), rel=1e-3)
    with pytest.raises(ValueError, match="eps_sq"):
        coding_rate(z, 0.0)


def test_coding_rate_ignores_scale_permutation_and_rotation() -> None:
    torch.manual_seed(0)
    z = torch.randn(200, 32)
    base = coding_rate(z, 0.5)
    scales = torch.rand(200, 1) * 100 + 0.01
    rotation = torch.linalg.qr(torch.randn(32, 32))[0]
    for other in (z * scales, z * 1e4, z[torch.randperm(200)], z @ rotation):
        torch.testing.assert_close(coding_rate(other, 0.5), base, rtol=1e-4, atol=1e-4)


def test_coding_rate_sylvester_form_agrees_when_n_below_d() -> None:
    torch.manual_seed(1)
    z = torch.randn(10, 64, dtype=torch.float64)
    u = torch.nn.functional.normalize(z, dim=1)
    direct = 0.5 * torch.logdet(torch.eye(64, dtype=torch.float64) + 64 / (10 * 0.5) * u.T @ u)
    torch.testing.assert_close(coding_rate(z, 0.5), direct)


def test_coding_rate_is_float32_under_autocast() -> None:
    torch.manual_seed(2)
    z = torch.randn(64, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = coding_rate(z @ torch.eye(32), 0.5)  # the matmul output is bf16 under autocast
    assert r.dtype == torch.float32
    torch.testing.assert_close(r, coding_rate(z, 0.5), rtol=2e-2, atol=0)


def test_coding_rate_gradients_stay_finite_at_collapse() -> None:
    z = torch.ones(32, 16, requires_grad=True)
    coding_rate(z, 0.5).backward()
    assert torch.isfinite(z.grad).all()
    spread = torch.randn(32, 16, requires_grad=True)
    (-coding_rate(spread, 0.5)).backward()
    assert torch.isfinite(spread.grad).all() and spread.grad.abs().sum() > 0


def test_class_coding_rate() -> None:
    d = 8
    z = torch.eye(d).repeat(4, 1)  # 32 rows, each class k holds copies of one basis vector
    labels = torch.arange(d).repeat(4)
    # every class is fully collapsed: each contributes (1/d)·½·log(1 + d/ε²)
    assert class_coding_rate(z, labels, 0.5).item() == pytest.approx(0.5 * math.log(1 + d / 0.5), rel=1e-5)
    # one class holding everything is the total rate
    torch.testing.assert_close(class_coding_rate(z, torch.zeros(32, dtype=torch.long), 0.5), coding_rate(z, 0.5))
    assert coding_rate(z, 0.5) > class_coding_rate(z, labels, 0.5)  # rate reduction ΔR > 0
    with pytest.raises(ValueError, match="labels"):
        class_coding_rate(z, labels[:5], 0.5)
