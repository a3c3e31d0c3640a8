"""The released code's offline probe: a linear classifier trained for many epochs with AdamW on
features of views drawn afresh every epoch (beside this lab's fixed-view L-BFGS probe)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def fresh_view_probe_accuracy(
    train_features: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 300,
    lr: float = 4e-4,
    weight_decay: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """Test accuracy of a linear head trained `epochs` epochs, each on `train_features()` → (x (N, D), y (N,)),
    a fresh draw of views per call. Inputs standardised with the first draw's statistics."""
    gen = torch.Generator().manual_seed(seed)
    x, y = train_features()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    head = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.normal_(head.weight, std=0.01, generator=gen)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for epoch in range(epochs):
        if epoch:
            x, y = train_features()
        x = (x - mean) / std
        for idx in torch.randperm(x.shape[0], generator=gen).split(batch_size):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(head(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        return (head((test_x - mean) / std).argmax(1) == test_y).float().mean().item()
