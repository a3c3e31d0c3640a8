"""Dataset names → loaders. The single entry point for training, evaluation and `lab data check`.

Embedded datasets (shapes, digits) are generated here; on-disk ones are read by `lab.data.disk`
from `root` (default ./data) and raise `DatasetMissingError` naming the expected layout.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from lab.data.base import ImageDataset
from lab.data.embedded import make_digits, make_shapes

EMBEDDED = {"shapes": make_shapes, "digits": make_digits}
ON_DISK = ("cifar10", "cifar100", "mnist", "stl10", "3diebench")
DATASETS = (*EMBEDDED, *ON_DISK)
DEFAULT_ROOT = Path("data")


def _resize(ds: ImageDataset, size: int) -> ImageDataset:
    """Resize images to size×size (bilinear, antialiased), once at load time, in chunks."""
    chunks = [
        F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        .round().clamp(0, 255).to(torch.uint8)
        for c in ds.images.split(4096)
    ]
    ds.images = torch.cat(chunks)
    return ds


def _num_samples(ds: ImageDataset) -> int:
    return len(ds) if ds.groups is None else int(ds.groups.unique().numel())


def _subset(ds: ImageDataset, num: int, seed: int) -> ImageDataset:
    """A seeded random subset of `num` samples: images, or whole objects when grouped."""
    gen = torch.Generator().manual_seed(seed)
    if ds.groups is None:
        idx = torch.randperm(len(ds), generator=gen)[:num].sort().values
    else:
        ids = ds.groups.unique()
        keep = ids[torch.randperm(ids.numel(), generator=gen)[:num]]
        idx = torch.isin(ds.groups, keep).nonzero().squeeze(1)
    return ImageDataset(
        name=ds.name, images=ds.images[idx], labels=ds.labels[idx], num_classes=ds.num_classes,
        class_names=ds.class_names, groups=None if ds.groups is None else ds.groups[idx],
        latents={k: v[idx] for k, v in ds.latents.items()},
    )


def load_dataset(
    name: str,
    root: Path | str | None = None,
    split: str = "train",
    *,
    image_size: int | None = None,
    num: int | None = None,
    seed: int = 0,
    stream: str = "auto",
    memory_gib: float = 16.0,
    cache_dir: Path | str | None = None,
    progress: bool = True,
) -> ImageDataset:
    """Load dataset `name` ('shapes', 'digits', 'cifar10', 'cifar100', 'mnist', 'stl10', '3diebench').

    image_size: resize to this (embedded data is rendered at it; default 32 for embedded,
    native size for on-disk). num: shapes generates this many; others take a seeded subset
    (of objects, for 3DIEBench, whose samples are objects).
    stream (3DIEBench): 'memory' loads the renders (refused over `memory_gib`), 'disk' reads
    them per batch from a uint8 cache built once under `cache_dir`, 'auto' streams exactly
    when the split would exceed `memory_gib`; `progress` shows the cache build.
    """
    if name in EMBEDDED:
        return EMBEDDED[name](split=split, num=num, image_size=image_size or 32, seed=seed)
    if name not in ON_DISK:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    from lab.data.disk import READERS

    if stream not in ("auto", "memory", "disk"):
        raise ValueError(f"stream must be 'auto', 'memory' or 'disk', got {stream!r}")
    if name == "3diebench":
        # The train split is 41,920 objects × 50 renders × 128²×3 B ≈ 96 GiB as uint8: the reader
        # picks objects and resizes while it reads, and streams from a disk cache when asked (or
        # when the split would not fit in memory_gib).
        from lab.data.disk.iebench import objects_for_split, VIEWS

        size, root = image_size or 128, Path(root or DEFAULT_ROOT)
        if stream == "auto":
            objects = min(num or 1 << 62, len(objects_for_split(root, split)[0]))
            stream = "disk" if objects * VIEWS * 3 * size**2 / 2**30 > memory_gib else "memory"
        return READERS[name](root, split, num_objects=num, image_size=size, seed=seed, max_gib=memory_gib,
                             stream=stream == "disk", cache_dir=None if cache_dir is None else Path(cache_dir),
                             progress=progress)
    ds = READERS[name](Path(root or DEFAULT_ROOT), split)
    if num is not None and num < _num_samples(ds):
        ds = _subset(ds, num, seed)
    if image_size is not None and ds.images.shape[-1] != image_size:
        ds = _resize(ds, image_size)
    return ds
