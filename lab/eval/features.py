"""Frozen features of a seq-JEPA model for the offline probes: `extract` → `Features`.

Extracted in eval mode from fixed-seed views, from sequences of max(M_val)+1 views: z of every view,
z_AGG at each M_val (views 1..k with actions a_1..a_{k−1}), and z_AGG of every view alone (one-view
sequences). `lab eval` (lab.evaluate) and `lab stream` (lab.train.stream) probe them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lab.build import autocast_for
from lab.data.views import ViewSampler
from lab.models.seqjepa import SeqJEPA


@dataclass
class Features:
    z: torch.Tensor  # (N, V, D) encoder output of every view
    agg: dict[int, torch.Tensor]  # M_val → (N, D_tok) z_AGG over views 1..M_val
    agg_single: torch.Tensor  # (N, V, D_tok) z_AGG of every view as a one-view sequence
    action: torch.Tensor  # (N, A) a_1: x1 → x2
    labels: torch.Tensor  # (N,)
    original: torch.Tensor | None = None  # (N, D) encoder output of the un-augmented image, when asked

    @property
    def z1(self) -> torch.Tensor:
        return self.z[:, 0]

    @property
    def z2(self) -> torch.Tensor:
        return self.z[:, 1]

    @property
    def single(self) -> torch.Tensor:
        """(N, 2·D_tok) [z_AGG(x1); z_AGG(x2)], the leakage probe's input."""
        return self.agg_single[:, :2].flatten(1)


@torch.no_grad()
def extract(model: SeqJEPA, sampler: ViewSampler, m_vals: list[int], batch_size: int, limit: int | None,
            seed: int, originals: bool = False) -> Features:
    """Frozen features for the first `limit` samples (all when None), batch by batch; views drawn from `seed`;
    with `originals`, also z of the un-augmented images."""
    n = min(sampler.num_samples, limit or sampler.num_samples)
    num_views = max(m_vals) + 1
    device = sampler.device
    autocast = autocast_for(device)
    parts: dict[str, list[torch.Tensor]] = {"z": [], "agg_single": [], "action": [], "labels": []}
    if originals:
        parts["original"] = []
    aggs: dict[int, list[torch.Tensor]] = {k: [] for k in m_vals}
    with sampler.seeded(seed):
        for idx in torch.arange(n, device=device).split(batch_size):
            seq = sampler.sample(idx, num_views)
            with autocast:
                z = model.encode(seq.views)  # (B, V, D)
                e = model.embed_actions(seq.actions)  # (B, V−1, d_e) or None
                for k in m_vals:
                    aggs[k].append(model.aggregate(z[:, :k], e).float())
                alone = z.flatten(0, 1)[:, None]  # (B·V, 1, D): every view as a one-view sequence
                single = model.aggregate(alone, None if e is None else e.repeat_interleave(num_views, dim=0)).float()
            parts["z"].append(z.float())
            parts["agg_single"].append(single.unflatten(0, (idx.shape[0], num_views)))
            parts["action"].append(seq.actions[:, 0].float())
            parts["labels"].append(seq.labels)
            if originals:
                with autocast:
                    parts["original"].append(model.encoder(sampler.originals(idx)).float())
    cat = {k: torch.cat(v).cpu() for k, v in parts.items()}
    return Features(**cat, agg={k: torch.cat(v).cpu() for k, v in aggs.items()})
