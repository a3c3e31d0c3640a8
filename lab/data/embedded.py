"""Datasets that need no download: procedural shapes and scikit-learn's handwritten digits.

Both are made in memory in well under a second and are deterministic given the seed, so
smoke and quick runs, tests and benchmarks never touch the network or the disk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lab.data.base import ImageDataset

SHAPE_CLASSES = ["disc", "square", "triangle", "plus", "ring", "star", "half-disc", "ellipse"]
_DEFAULT_SIZES = {"train": 5000, "test": 1000}
_SPLIT_OFFSET = {"train": 0, "test": 1}
_SUPERSAMPLE = 2  # render at 2× and average-pool: cheap anti-aliasing


def _shape_mask(cls: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-mask of one shape class in its own unit frame. u, v: (n, H, W) → (n, H, W) bool."""
    rho, phi = torch.sqrt(u**2 + v**2), torch.atan2(v, u)
    s3 = math.sqrt(3.0)
    masks = {
        "disc": lambda: rho <= 1.0,
        "square": lambda: torch.maximum(u.abs(), v.abs()) <= 0.8,
        "triangle": lambda: (v >= -0.5) & (s3 * u + v <= 1.0) & (-s3 * u + v <= 1.0),
        "plus": lambda: ((u.abs() <= 0.3) & (v.abs() <= 0.95)) | ((v.abs() <= 0.3) & (u.abs() <= 0.95)),
        "ring": lambda: (rho >= 0.55) & (rho <= 1.0),
        "star": lambda: rho <= 0.55 + 0.4 * torch.cos(5 * phi),
        "half-disc": lambda: (rho <= 1.0) & (v >= -0.15),
        "ellipse": lambda: (u / 1.0) ** 2 + (v / 0.45) ** 2 <= 1.0,
    }
    return masks[SHAPE_CLASSES[cls]]()


def make_shapes(split: str = "train", num: int | None = None, image_size: int = 32, seed: int = 0) -> ImageDataset:
    """Coloured shapes on a dark background, one per image.

    A near-white marker dot off the shape's centre breaks every rotational symmetry (disc, ring,
    square, …), so the rotation between two views of any shape is identifiable.
    Each image draws a class, a colour, a background tint, a position, a size and an
    orientation; these are returned as `latents` (angle (N,), scale (N,), pos (N, 2),
    colour (N, 3)). Views are later made by known transformations of these images.
    """
    if split not in _DEFAULT_SIZES:
        raise ValueError(f"shapes has splits {sorted(_DEFAULT_SIZES)}, not {split!r}")
    n = num or _DEFAULT_SIZES[split]
    g = torch.Generator().manual_seed(seed * 2 + _SPLIT_OFFSET[split])
    labels = torch.randint(len(SHAPE_CLASSES), (n,), generator=g)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.pi
    scale = 0.35 + 0.25 * torch.rand(n, generator=g)
    pos = (torch.rand(n, 2, generator=g) * 2 - 1) * 0.2
    colour = 0.35 + 0.65 * torch.rand(n, 3, generator=g)
    background = 0.2 * torch.rand(n, 3, generator=g)

    res = image_size * _SUPERSAMPLE
    axis = (torch.arange(res) + 0.5) / res * 2 - 1
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    mask, marker = torch.zeros(n, res, res), torch.zeros(n, res, res)
    for cls in range(len(SHAPE_CLASSES)):  # loop over classes, not samples
        idx = (labels == cls).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        dx = (xx - pos[idx, 0, None, None]) / scale[idx, None, None]
        dy = (yy - pos[idx, 1, None, None]) / scale[idx, None, None]
        c, s = torch.cos(angle[idx])[:, None, None], torch.sin(angle[idx])[:, None, None]
        u, v = c * dx + s * dy, -s * dx + c * dy
        mask[idx] = _shape_mask(cls, u, v).float()
        marker[idx] = (((u - 0.55) ** 2 + (v + 0.25) ** 2) <= 0.25**2).float()
    mask, marker = F.avg_pool2d(mask[:, None], _SUPERSAMPLE), F.avg_pool2d(marker[:, None], _SUPERSAMPLE)
    img = background[:, :, None, None] * (1 - mask) + colour[:, :, None, None] * mask
    img = img * (1 - marker) + 0.95 * marker
    return ImageDataset(
        name="shapes",
        images=(img * 255).round().to(torch.uint8),
        labels=labels,
        num_classes=len(SHAPE_CLASSES),
        class_names=list(SHAPE_CLASSES),
        latents={"angle": angle, "scale": scale, "pos": pos, "colour": colour},
    )


def make_digits(split: str = "train", num: int | None = None, image_size: int = 32, seed: int = 0) -> ImageDataset:
    """scikit-learn's 1,797 8×8 handwritten digits (bundled with sklearn), resized bilinearly.

    A seeded 80/20 permutation splits train/test; `num` caps the split. Images are (N, 1, S, S).
    """
    from sklearn.datasets import load_digits

    if split not in _DEFAULT_SIZES:
        raise ValueError(f"digits has splits {sorted(_DEFAULT_SIZES)}, not {split!r}")
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(labels))
    idx = perm[:cut] if split == "train" else perm[cut:]
    idx = idx[:num] if num else idx
    big = F.interpolate(images[idx], size=(image_size, image_size), mode="bilinear", align_corners=False)
    return ImageDataset(
        name="digits",
        images=(big.clamp(0, 1) * 255).round().to(torch.uint8),
        labels=labels[idx],
        num_classes=10,
        class_names=[str(d) for d in range(10)],
    )
