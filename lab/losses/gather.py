"""The global batch under data parallel: a loss term that is a statistic of the batch (a coding rate, a
variance, a batch mean) must see every rank's rows, not only this rank's shard.

`gather_rows` concatenates every rank's rows with a differentiable all-gather, so such a term is the
same on every rank, equal to the single-process term on the concatenated batch, and its gradient is
the single-process gradient once DistributedDataParallel has averaged over ranks (below).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn


def gather_rows(z: torch.Tensor) -> torch.Tensor:
    """This rank's rows (B, …) → every rank's, (world·B, …) in rank order; z itself when not distributed.

    The gather is differentiable (`torch.distributed.nn.functional.all_gather`): in backward each
    rank's rows receive the sum over ranks of the gradients with respect to them, world × the
    gradient of the (identical) global loss, which DistributedDataParallel's average over ranks
    turns back into the single-process gradient."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    return torch.cat(dist_nn.all_gather(z))
