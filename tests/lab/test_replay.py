"""Replay buffers: what each one keeps."""

from __future__ import annotations

import pytest
import torch

from lab.data.replay import BUFFERS, FIFOBuffer, MinRedBuffer, ReservoirBuffer


def test_fifo_keeps_the_most_recent() -> None:
    buf = FIFOBuffer(5)
    for start in range(0, 12, 3):
        buf.add(torch.arange(start, start + 3))
    assert buf.indices.tolist() == [7, 8, 9, 10, 11]
    slots, idx = buf.sample(3)
    assert len(set(idx.tolist())) == 3 and set(idx.tolist()) <= set(range(7, 12))
    torch.testing.assert_close(buf.indices[slots], idx)


def test_reservoir_is_a_uniform_sample_of_the_stream() -> None:
    counts = torch.zeros(200)
    for trial in range(300):
        buf = ReservoirBuffer(20, seed=trial)
        for start in range(0, 200, 8):
            buf.add(torch.arange(start, start + 8))
        assert len(buf) == 20 and buf.seen == 200
        counts[buf.indices] += 1
    rate = counts / 300  # each item should be kept with probability 20/200 = 0.1
    early, late = rate[:100].mean(), rate[100:].mean()
    assert abs(early - 0.1) < 0.015 and abs(late - 0.1) < 0.015
    # a FIFO buffer, by contrast, only keeps the end of the stream
    fifo = FIFOBuffer(20)
    fifo.add(torch.arange(200))
    assert fifo.indices.min() == 180


def _minred_with(features: torch.Tensor, capacity: int, first: int = 0) -> MinRedBuffer:
    """A MinRed buffer holding len(features) samples (indices first, first+1, …), each trained on once."""
    buf = MinRedBuffer(capacity)
    idx = torch.arange(first, first + len(features))
    buf.add(idx)
    buf.observe(torch.arange(len(features)), features, features)  # normalise(z + z) = normalise(z)
    return buf


def test_minred_evicts_redundant_samples_first() -> None:
    torch.manual_seed(0)
    distinct = torch.eye(8)  # 8 orthogonal directions
    buf = _minred_with(distinct, capacity=16)
    near_copies = distinct[0].repeat(6, 1) + 0.01 * torch.randn(6, 8)  # 6 near-duplicates of sample 0
    buf.add(torch.arange(100, 106))
    buf.observe(torch.arange(8, 14), near_copies, near_copies)
    buf.capacity = 8
    buf.add(torch.arange(200, 200))  # an empty offer: shrink to the new capacity
    assert len(buf) == 8
    kept = set(buf.indices.tolist())
    assert set(range(1, 8)) <= kept  # every distinct direction survives
    assert len(kept & ({0} | set(range(100, 106)))) == 1  # one representative of the redundant cluster
    # a reservoir or FIFO buffer of the same size would have dropped distinct samples
    fifo = FIFOBuffer(8)
    fifo.add(torch.arange(8))
    fifo.add(torch.arange(100, 106))
    assert len(set(fifo.indices.tolist()) & set(range(1, 8))) == 2


def test_minred_features_are_the_polyak_average_of_normalised_view_sums() -> None:
    """Purushwalkam et al.: feature = normalise(z1 + z2) at the first visit, then
    normalise((1 − γ)·old + γ·normalise(z1 + z2)), γ = 0.5 — not the last view-1 feature."""
    buf = MinRedBuffer(4)
    buf.add(torch.tensor([5, 6]))
    assert not buf.has_feat.any()  # samples enter without a feature
    z1, z2 = torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 4.0], [0.0, 2.0]])
    buf.observe(torch.tensor([0, 1]), z1, z2)
    torch.testing.assert_close(buf.feats, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    buf.observe(torch.tensor([0]), torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    mixed = torch.nn.functional.normalize(torch.tensor([0.5 * 0.6 + 0.5, 0.5 * 0.8]), dim=0)
    torch.testing.assert_close(buf.feats[0], mixed)
    torch.testing.assert_close(buf.feats[1], torch.tensor([0.0, 1.0]))  # untouched
    assert buf.has_feat.all()


def test_minred_evicts_only_samples_with_features_and_the_oldest_while_too_few_have_one() -> None:
    buf = MinRedBuffer(4)
    buf.add(torch.arange(4))
    buf.add(torch.arange(10, 12))  # nothing trained on yet: the two oldest go
    assert buf.indices.tolist() == [2, 3, 10, 11]
    same = torch.tensor([[1.0, 0.0]]).repeat(4, 1)
    buf.observe(torch.arange(4), same, same)  # all four identical
    buf.add(torch.tensor([20, 21]))  # 4 with features ≥ 2·2: redundancy decides, the new unseen stay
    assert {20, 21} <= set(buf.indices.tolist()) and len(buf) == 4


def test_minred_observe_changes_what_is_redundant() -> None:
    buf = _minred_with(torch.eye(3), capacity=4)
    buf.observe(torch.tensor([0]), torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]))
    buf.observe(torch.tensor([0]), torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]))
    buf.add(torch.tensor([9]))
    buf.observe(torch.tensor([3]), torch.tensor([[0.0, 0.0, -1.0]]), torch.tensor([[0.0, 0.0, -1.0]]))
    buf.capacity = 3
    buf.add(torch.arange(0))
    # sample 0 has drifted towards sample 1: one of the pair goes, the distinct ones stay
    assert 9 in buf.indices.tolist() and 2 in buf.indices.tolist() and len({0, 1} & set(buf.indices.tolist())) == 1


def test_registry_and_capacity_check() -> None:
    assert set(BUFFERS) == {"fifo", "reservoir", "minred"}
    with pytest.raises(ValueError, match="capacity"):
        FIFOBuffer(0)
    assert FIFOBuffer(4).sample(3)[1].numel() == 0
