"""Replay buffers for streaming seq-JEPA: FIFO, reservoir and MinRed.

A buffer holds sample *indices* into the host-side stream dataset (never images), so it costs a
few KB whatever the images are; replayed samples get fresh views when they are drawn again.
MinRed (Purushwalkam, Morgado, Gupta, ECCV 2022, arXiv 2203.12710) also keeps one feature per
slot (ℓ2-normalised encoder output, refreshed whenever the sample is added or replayed) and,
when over capacity, evicts the sample most similar to its nearest neighbour in the buffer — the
most redundant one. Written here because the continual-learning libraries that ship buffers
(avalanche, mammoth) pull whole frameworks for a few lines of bookkeeping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F


class ReplayBuffer(ABC):
    """Fixed-capacity store of sample indices; `sample` draws without replacement."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"replay buffer capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.indices = torch.empty(0, dtype=torch.long)
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.indices.numel()

    @abstractmethod
    def add(self, idx: torch.Tensor, feats: torch.Tensor | None = None) -> None:
        """Offer new samples idx (n,) (with features (n, D) where the buffer uses them)."""

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to n stored samples: (slots (k,), dataset indices (k,)), k = min(n, len)."""
        slots = torch.randperm(len(self), generator=self.gen)[: min(n, len(self))]
        return slots, self.indices[slots]

    def refresh(self, slots: torch.Tensor, feats: torch.Tensor) -> None:
        """New features for replayed slots; only MinRed keeps features."""


class FIFOBuffer(ReplayBuffer):
    """The most recent `capacity` samples."""

    def add(self, idx: torch.Tensor, feats: torch.Tensor | None = None) -> None:
        self.indices = torch.cat([self.indices, idx.cpu()])[-self.capacity :]


class ReservoirBuffer(ReplayBuffer):
    """A uniform sample of everything offered so far (Vitter's algorithm R): the k-th item
    offered (0-based) replaces a random slot with probability capacity / (k + 1)."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        super().__init__(capacity, seed)
        self.seen = 0

    def add(self, idx: torch.Tensor, feats: torch.Tensor | None = None) -> None:
        for i in idx.cpu().tolist():
            if len(self) < self.capacity:
                self.indices = torch.cat([self.indices, torch.tensor([i])])
            else:
                j = int(torch.randint(self.seen + 1, (1,), generator=self.gen))
                if j < self.capacity:
                    self.indices[j] = i
            self.seen += 1


class MinRedBuffer(ReplayBuffer):
    """Keeps the least redundant samples: over capacity, evict the sample with the highest cosine
    similarity to its nearest neighbour in the buffer, one at a time."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        super().__init__(capacity, seed)
        self.feats = torch.empty(0, 0)

    def add(self, idx: torch.Tensor, feats: torch.Tensor | None = None) -> None:
        if feats is None:
            raise ValueError("MinRed needs the features of the samples it is offered")
        feats = F.normalize(feats.detach().float().cpu(), dim=-1)
        self.indices = torch.cat([self.indices, idx.cpu()])
        self.feats = feats if self.feats.numel() == 0 else torch.cat([self.feats, feats])
        excess = len(self) - self.capacity
        if excess <= 0:
            return
        sim = self.feats @ self.feats.T
        sim.fill_diagonal_(-float("inf"))
        keep = torch.ones(len(self), dtype=torch.bool)
        for _ in range(excess):
            nearest = sim.max(dim=1).values
            nearest[~keep] = -float("inf")
            worst = int(nearest.argmax())
            keep[worst] = False
            sim[:, worst] = -float("inf")
        self.indices, self.feats = self.indices[keep], self.feats[keep]

    def refresh(self, slots: torch.Tensor, feats: torch.Tensor) -> None:
        self.feats[slots] = F.normalize(feats.detach().float().cpu(), dim=-1)


BUFFERS: dict[str, type[ReplayBuffer]] = {"fifo": FIFOBuffer, "reservoir": ReservoirBuffer, "minred": MinRedBuffer}
