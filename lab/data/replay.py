"""Replay buffers for streaming seq-JEPA: FIFO, reservoir and MinRed.

A buffer holds sample *indices* into the host-side stream dataset (never images), so it costs a
few KB whatever the images are; replayed samples get fresh views when they are drawn again.

MinRed follows Purushwalkam, Morgado and Gupta's buffered SSL (ECCV 2022, arXiv 2203.12710;
their MinRedBufferBatchSampler): every incoming sample enters the buffer without a feature; each
training batch is drawn from the buffer alone (lab.train.stream); after a sample is trained on it
gets a feature, the ℓ2-normalised sum of its two views' encoder outputs, normalise(z1 + z2), and
each later visit Polyak-averages it in (γ = 0.5, then renormalised). Over capacity the buffer
evicts, one at a time, the sample whose nearest neighbour (cosine) is closest — the most redundant
one — among the samples that have a feature; while fewer than twice the excess have one, it
evicts the oldest instead. Written here because the continual-learning libraries that ship
buffers (avalanche, mammoth) pull whole frameworks for a few lines of bookkeeping.
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
    def add(self, idx: torch.Tensor) -> None:
        """Offer new samples idx (n,)."""

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to n stored samples: (slots (k,), dataset indices (k,)), k = min(n, len)."""
        slots = torch.randperm(len(self), generator=self.gen)[: min(n, len(self))]
        return slots, self.indices[slots]

    def observe(self, slots: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> None:
        """Encoder outputs (k, D) of two views of the samples in `slots` (k,) after a step trained on them;
        only MinRed keeps features."""


class FIFOBuffer(ReplayBuffer):
    """The most recent `capacity` samples."""

    def add(self, idx: torch.Tensor) -> None:
        self.indices = torch.cat([self.indices, idx.cpu()])[-self.capacity :]


class ReservoirBuffer(ReplayBuffer):
    """A uniform sample of everything offered so far (Vitter's algorithm R): the k-th item
    offered (0-based) replaces a random slot with probability capacity / (k + 1)."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        super().__init__(capacity, seed)
        self.seen = 0

    def add(self, idx: torch.Tensor) -> None:
        for i in idx.cpu().tolist():
            if len(self) < self.capacity:
                self.indices = torch.cat([self.indices, torch.tensor([i])])
            else:
                j = int(torch.randint(self.seen + 1, (1,), generator=self.gen))
                if j < self.capacity:
                    self.indices[j] = i
            self.seen += 1


class MinRedBuffer(ReplayBuffer):
    """Keeps the least redundant samples (module docstring): features of trained-on samples,
    Polyak-averaged; eviction by nearest-neighbour similarity among them, the oldest first otherwise."""

    def __init__(self, capacity: int, seed: int = 0, gamma: float = 0.5) -> None:
        super().__init__(capacity, seed)
        self.gamma = gamma
        self.feats = torch.empty(0, 0)  # (len, D); rows of unseen samples are zeros
        self.has_feat = torch.empty(0, dtype=torch.bool)  # (len,): trained on at least once
        self.age = torch.empty(0, dtype=torch.long)  # (len,): add() calls since the sample entered

    def add(self, idx: torch.Tensor) -> None:
        n = idx.numel()
        self.indices = torch.cat([self.indices, idx.cpu()])
        self.has_feat = torch.cat([self.has_feat, torch.zeros(n, dtype=torch.bool)])
        self.age = torch.cat([self.age, torch.zeros(n, dtype=torch.long)]) + 1
        if self.feats.numel():
            self.feats = torch.cat([self.feats, self.feats.new_zeros(n, self.feats.shape[1])])
        self._evict(len(self) - self.capacity)

    def observe(self, slots: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> None:
        new = F.normalize((z1 + z2).detach().float().cpu(), dim=-1)  # (k, D)
        if self.feats.numel() == 0:
            self.feats = new.new_zeros(len(self), new.shape[1])
        slots = slots.cpu()
        seen = self.has_feat[slots].unsqueeze(1)
        mixed = F.normalize((1 - self.gamma) * self.feats[slots] + self.gamma * new, dim=-1)
        self.feats[slots] = torch.where(seen, mixed, new)
        self.has_feat[slots] = True

    def _evict(self, excess: int) -> None:
        if excess <= 0:
            return
        seen = self.has_feat.nonzero().squeeze(1)
        if seen.numel() < 2 * excess:  # too few features to judge redundancy: the oldest go
            drop = self.age.argsort(descending=True, stable=True)[:excess]
        else:
            sim = self.feats[seen] @ self.feats[seen].T
            sim.fill_diagonal_(-float("inf"))
            dropped = []
            for _ in range(excess):
                worst = int(sim.max(dim=1).values.argmax())
                dropped.append(worst)
                sim[worst, :] = -float("inf")
                sim[:, worst] = -float("inf")
            drop = seen[torch.tensor(dropped)]
        keep = torch.ones(len(self), dtype=torch.bool)
        keep[drop] = False
        self.indices, self.has_feat, self.age = self.indices[keep], self.has_feat[keep], self.age[keep]
        if self.feats.numel():
            self.feats = self.feats[keep]


BUFFERS: dict[str, type[ReplayBuffer]] = {"fifo": FIFOBuffer, "reservoir": ReservoirBuffer, "minred": MinRedBuffer}
