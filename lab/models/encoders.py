"""Image encoders f_θ: (B, 3, H, W) → (B, D) pooled features, no projector.

ResNet-18 is written out here because torchvision is not importable in this environment (its
wheels must match the CUDA build of torch); the layout follows torchvision's `resnet18` with
`zero_init_residual=True` and `fc = Identity`. The CIFAR stem replaces the 7×7/2 convolution and
max-pool with one 3×3/1 convolution, as the paper does for 32-px inputs.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(c_in: int, c_out: int, stride: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual; the last BN starts at zero so the block starts as identity."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, stride), nn.ReLU(inplace=True), *_conv_bn(c_out, c_out, 1))
        nn.init.zeros_(self.body[-1].weight)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(*_conv_bn(c_in, c_out, stride, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    """ResNet-18 trunk with global average pooling. (B, 3, H, W) → (B, 512)."""

    def __init__(self, cifar_stem: bool = True) -> None:
        super().__init__()
        if cifar_stem:
            stem = [*_conv_bn(3, 64, 1), nn.ReLU(inplace=True)]
        else:
            stem = [*_conv_bn(3, 64, 2, kernel=7), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        layers, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.net = nn.Sequential(*stem, *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = 512
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvNet(nn.Module):
    """Small CPU-friendly encoder: 4 × (3×3 conv, BN, ReLU), stride 2 after the first, then
    average pooling. Widths w, 2w, 4w, 8w. (B, 3, H, W) → (B, 8w)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        widths, blocks, c_in = [width, 2 * width, 4 * width, 8 * width], [], 3
        for i, c_out in enumerate(widths):
            blocks += [*_conv_bn(c_in, c_out, 1 if i == 0 else 2), nn.ReLU(inplace=True)]
            c_in = c_out
        self.net = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
