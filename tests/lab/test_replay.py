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


def test_minred_evicts_redundant_samples_first() -> None:
    torch.manual_seed(0)
    distinct = torch.eye(8)  # 8 orthogonal directions
    buf = MinRedBuffer(8)
    buf.add(torch.arange(8), distinct)
    near_copies = distinct[0].repeat(6, 1) + 0.01 * torch.randn(6, 8)  # 6 near-duplicates of sample 0
    buf.add(torch.arange(100, 106), near_copies)
    assert len(buf) == 8
    kept = set(buf.indices.tolist())
    assert set(range(1, 8)) <= kept  # every distinct direction survives
    assert len(kept & ({0} | set(range(100, 106)))) == 1  # one representative of the redundant cluster
    # a reservoir or FIFO buffer of the same size would have dropped distinct samples
    fifo = FIFOBuffer(8)
    fifo.add(torch.arange(8))
    fifo.add(torch.arange(100, 106))
    assert len(set(fifo.indices.tolist()) & set(range(1, 8))) == 2


def test_minred_refresh_changes_what_is_redundant() -> None:
    buf = MinRedBuffer(3)
    buf.add(torch.arange(3), torch.eye(3))
    slots = torch.tensor([0])
    buf.refresh(slots, torch.tensor([[0.0, 1.0, 0.0]]))  # sample 0 now duplicates sample 1
    buf.add(torch.tensor([9]), torch.tensor([[0.0, 0.0, -1.0]]))
    assert 9 in buf.indices.tolist() and len({0, 1} & set(buf.indices.tolist())) == 1
    with pytest.raises(ValueError, match="features"):
        buf.add(torch.tensor([1]))


def test_registry_and_capacity_check() -> None:
    assert set(BUFFERS) == {"fifo", "reservoir", "minred"}
    with pytest.raises(ValueError, match="capacity"):
        FIFOBuffer(0)
    assert FIFOBuffer(4).sample(3)[1].numel() == 0
