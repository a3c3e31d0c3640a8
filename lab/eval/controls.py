"""Fair controls for learning claims: the untrained twin with its BatchNorm statistics re-estimated.

A freshly built network keeps BatchNorm's initial running statistics (mean 0, variance 1), so in
eval mode its BN layers do not normalise, while the trained network's do: comparing the two
credits training with what any forward pass over the data would have given (issue 22, finding 1:
re-estimating only the twin's statistics raised its z_AGG probe from about 0.17 to 0.27). The
fair twin has the run's initial weights and running statistics measured on training sequences,
with no gradient step and no optimiser: every BN layer is put in train mode with momentum None
(a cumulative average over the batches seen), the rest of the network stays in eval mode (no
dropout), the sequences go through the training forward pass, and the mode is restored.

`torch.optim.swa_utils.update_bn` does the same for a model called on one tensor; the seq-JEPA
forward takes views and actions, and update_bn puts dropout in train mode too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lab.data.views import ViewSampler


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of `model` that keep running statistics (BatchNorm1d/2d/3d, SyncBatchNorm)."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, batches: Iterable[tuple[torch.Tensor, ...]]) -> int:
    """Replace the running statistics of every BN layer of `model` by their average over `batches`.

    model: called as model(*batch); for SeqJEPA a batch is (context (B, M, 3, H, W), actions (B, M, d_a)).
    Each BN layer's running mean and (unbiased) variance become the mean over batches of its batch
    statistics (momentum None), so batches of equal size give the statistics of their union's mean.
    No parameter changes; no gradient is taken; the model's train/eval mode and each layer's
    momentum are restored. Returns the number of batches used (0 leaves the statistics as they were).
    """
    layers = batchnorm_layers(model)
    batches = iter(batches)
    first = next(batches, None)
    if first is None or not layers:
        return 0
    was_training, momenta = model.training, [bn.momentum for bn in layers]
    model.eval()  # dropout and everything else as at evaluation
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    used = 0
    try:
        for batch in itertools.chain([first], batches):
            model(*batch)
            used += 1
    finally:
        for bn, momentum in zip(layers, momenta, strict=True):
            bn.momentum = momentum
        model.train(was_training)
    return used


def reestimate_on_training_sequences(model: nn.Module, sampler: ViewSampler, seq_len: int, num: int, batch_size: int,
                                     seed: int) -> int:
    """`reestimate_batchnorm` of a SeqJEPA model on up to `num` training sequences; returns how many were used.

    A fixed-seed random subset of the sampler's samples, in whole batches of `batch_size` (BatchNorm
    needs two rows per batch), is made into seq_len + 1 views as in training, and the seq_len context
    views (B, M, 3, H, W) with their actions (B, M, A) go through model(context, actions). Returns 0,
    statistics untouched, when fewer than two sequences are asked for or the model has no BatchNorm.
    """
    num = min(num, sampler.num_samples)
    size = min(batch_size, num)
    if size < 2 or not batchnorm_layers(model):
        return 0
    order = torch.randperm(sampler.num_samples, generator=torch.Generator().manual_seed(seed))[: num // size * size]

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        with sampler.seeded(seed):
            for idx in order.to(sampler.device).split(size):
                seq = sampler.sample(idx, seq_len + 1)  # views (b, M+1, 3, H, W), actions (b, M, A)
                yield seq.views[:, :seq_len], seq.actions

    return reestimate_batchnorm(model, batches()) * size
