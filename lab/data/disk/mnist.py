"""MNIST from the idx files, plain or gzipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from lab.data.base import ImageDataset
from lab.data.disk.layout import find_dir
from lab.data.disk.splits import check_labels, check_split

_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path) -> np.ndarray:
    """An idx file of unsigned bytes (magic 0x0000 08 <ndim>, big-endian uint32 dims, then data).

    Reads ``path`` or, if absent, ``path.gz``. ValueError naming the file when the header or size is wrong.
    """
    if not path.is_file():
        path = path.with_name(path.name + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes (header {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} ({int(np.prod(dims))} bytes) but {len(raw) - offset} bytes follow")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_mnist(root: Path, split: str = "train") -> ImageDataset:
    """MNIST split 'train' (60k) or 'test' (10k) → (N, 1, 28, 28) uint8, labels 0…9."""
    check_split("mnist", split, ("train", "test"))
    folder = find_dir("mnist", Path(root))
    images = read_idx(folder / f"{_PREFIX[split]}-images-idx3-ubyte")
    labels = read_idx(folder / f"{_PREFIX[split]}-labels-idx1-ubyte").astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"mnist {split}: expected (N, H, W) images and (N,) labels, got {images.shape} and {labels.shape}")
    check_labels("mnist", labels, 10)
    return ImageDataset(
        name="mnist",
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels),
        num_classes=10,
        class_names=[str(d) for d in range(10)],
    )
