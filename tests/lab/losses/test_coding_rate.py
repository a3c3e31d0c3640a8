"""Coding rate: the closed forms of reference §2.3, the ε² convention, numerics and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lab.losses.coding_rate import class_coding_rate, coding_rate, max_coding_rate


def test_coding_rate_isotropic_unit_features() -> None:
    z = torch.eye(512)  # ZᵀZ = (n/d)·I with n = d
    assert coding_rate(z, eps_sq=0.5).item() == pytest.approx(281.2447, abs=1e-3)
    assert coding_rate(z, 0.5).item() == pytest.approx(256 * math.log(3), rel=1e-5) == pytest.approx(max_coding_rate(512, 512, 0.5))
    assert coding_rate(torch.eye(4), 0.5).item() == pytest.approx(2 * math.log(3), rel=1e-6)
    assert coding_rate(torch.eye(8), 0.2).item() == pytest.approx(7.1670, abs=1e-4)


def test_coding_rate_identical_features() -> None:
    # float32 Cholesky of I + 10.24·11ᵀ (100 × 100): about 2e-5 relative error for some draws (1 in 3 unseeded)
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(0)).expand(100, -1)
    assert coding_rate(z, 0.5).item() == pytest.approx(0.5 * math.log(1 + 512 / 0.5), rel=1e-4)
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


@pytest.mark.parametrize(("n", "d"), [(64, 512), (512, 64), (32, 32)])
def test_the_rate_ceiling_is_reached_and_never_exceeded_for_any_batch_shape(n: int, d: int) -> None:
    """Issue 22, finding 7: the ceiling (d/2)·log(1 + 1/ε²) held only for n ≥ d; a batch of 64 in 512
    dimensions could reach R̃ = 0.32 at most. The true ceiling (k/2)·log(1 + d/(k ε²)), k = min(n, d),
    is reached (orthonormal rows, or a tight frame) and is above every random batch."""
    from lab.losses.objective import normalised_rate

    g = torch.Generator().manual_seed(0)
    if n <= d:  # n orthonormal rows
        best = torch.linalg.qr(torch.randn(d, n, generator=g))[0].T
    else:  # a harmonic frame, unit rows with ZᵀZ = (n/d)·I: √(2/d)·[cos 2πjf/n, sin 2πjf/n], f = 1..d/2
        angles = 2 * math.pi * torch.arange(n, dtype=torch.float64)[:, None] * torch.arange(1, d // 2 + 1) / n
        best = (torch.cat([angles.cos(), angles.sin()], 1) * math.sqrt(2 / d)).float()
    assert normalised_rate(best, 0.5).item() == pytest.approx(1.0, abs=1e-4)
    k = min(n, d)
    assert max_coding_rate(n, d, 0.5) == pytest.approx(k / 2 * math.log(1 + d / (k * 0.5)))
    for seed in range(5):
        z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
        assert coding_rate(z, 0.5).item() <= max_coding_rate(n, d, 0.5) + 1e-4
    with pytest.raises(ValueError, match="n, d ≥ 1"):
        max_coding_rate(0, 8, 0.5)


def _global_batch(world: int) -> torch.Tensor:
    return torch.randn(8 * world, 3, 16, generator=torch.Generator().manual_seed(0))  # (world·B, M, D)


def _rate_on_shards(rank: int, world: int, tmp: str) -> None:
    """One process of the gather test: its shard of the global batch through normalised_rate, checked
    against the single-process figures the parent saved."""
    import torch.distributed as dist

    from lab.losses.objective import normalised_rate

    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        expected = torch.load(f"{tmp}/expected.pt")
        shard = _global_batch(world)[rank * 8 : (rank + 1) * 8].clone().requires_grad_(True)
        rate = normalised_rate(shard, 0.5)
        rate.backward()
        torch.testing.assert_close(rate.detach(), expected["rate"])
        # DDP averages gradients over ranks: each rank's rows must carry world × the single-process gradient
        torch.testing.assert_close(shard.grad, world * expected["grad"][rank * 8 : (rank + 1) * 8], rtol=1e-4, atol=1e-6)
    finally:
        dist.destroy_process_group()


def test_under_data_parallel_the_rate_is_the_global_batchs(tmp_path) -> None:
    """Two gloo processes on CPU, each with half a batch: the rate each computes is the rate of the whole
    batch (it was each half's before the gather), and each half's gradient is what DDP's average needs."""
    import torch.multiprocessing as mp

    from lab.losses.objective import normalised_rate

    whole = _global_batch(2).requires_grad_(True)
    rate = normalised_rate(whole, 0.5)  # one process: no gather
    rate.backward()
    torch.save({"rate": rate.detach(), "grad": whole.grad}, tmp_path / "expected.pt")
    mp.spawn(_rate_on_shards, args=(2, str(tmp_path)), nprocs=2, join=True)
