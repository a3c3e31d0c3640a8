"""Image encoders f_θ: (B, 3, H, W) → (B, D) pooled features, no projector.

ResNet-18 is written out here because torchvision is not importable in this environment (its
wheels must match the CUDA build of torch); the layout follows torchvision's `resnet18` with
`zero_init_residual=True` and `fc = Identity`. The CIFAR stem replaces the 7×7/2 convolution and
max-pool with one 3×3/1 convolution, as the paper does for 32-px inputs.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    """batch: BatchNorm2d (the paper's; needs large batches); group: GroupNorm with 8 groups (or
    fewer when the channels do not divide); layer: GroupNorm(1) = LayerNorm over (C, H, W).
    The last two use no batch statistics, so they work with the tiny batches of a stream."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(next(g for g in (8, 4, 2, 1) if channels % g == 0), channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown encoder norm {kind!r}; choose batch, group or layer")


def _conv_bn(c_in: int, c_out: int, stride: int, kernel: int = 3, norm: str = "batch") -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), _norm(norm, c_out)]


class StagedEncoder(nn.Module):
    """An encoder as `stages` (an nn.ModuleList of blocks run in order) and a global-average-pool
    read-out; `stage_dims[s]` is the channel count after stage s. forward: (B, 3, H, W) → (B, D).
    Local (blockwise) learning trains each stage on its own loss (`lab.train.local`)."""

    stages: nn.ModuleList
    stage_dims: list[int]

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, C)."""
        return h.mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.pool(x)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual; the last BN starts at zero so the block starts as identity."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str = "batch") -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, stride, norm=norm), nn.ReLU(inplace=True),
                                  *_conv_bn(c_out, c_out, 1, norm=norm))
        nn.init.zeros_(self.body[-1].weight)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(*_conv_bn(c_in, c_out, stride, 1, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(StagedEncoder):
    """ResNet-18 trunk with global average pooling. (B, 3, H, W) → (B, 512).
    Stages: stem + layer1 (64), layer2 (128), layer3 (256), layer4 (512)."""

    def __init__(self, cifar_stem: bool = True, norm: str = "batch") -> None:
        super().__init__()
        if cifar_stem:
            stem = [*_conv_bn(3, 64, 1, norm=norm), nn.ReLU(inplace=True)]
        else:
            stem = [*_conv_bn(3, 64, 2, kernel=7, norm=norm), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        stages, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append([BasicBlock(c_in, c_out, stride, norm), BasicBlock(c_out, c_out, 1, norm)])
            c_in = c_out
        stages[0] = stem + stages[0]
        self.stages = nn.ModuleList(nn.Sequential(*blocks) for blocks in stages)
        self.stage_dims, self.out_dim = [64, 128, 256, 512], 512
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class ConvNet(StagedEncoder):
    """Small CPU-friendly encoder: 4 stages of (3×3 conv, norm, ReLU), stride 2 after the first,
    then average pooling. Widths w, 2w, 4w, 8w. (B, 3, H, W) → (B, 8w)."""

    def __init__(self, width: int = 32, norm: str = "batch") -> None:
        super().__init__()
        self.stage_dims, c_in = [width, 2 * width, 4 * width, 8 * width], 3
        stages = []
        for i, c_out in enumerate(self.stage_dims):
            stages.append(nn.Sequential(*_conv_bn(c_in, c_out, 1 if i == 0 else 2, norm=norm), nn.ReLU(inplace=True)))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.out_dim = self.stage_dims[-1]
