"""STL-10 from the binary release (stl10_binary/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lab.data.base import ImageDataset
from lab.data.disk.layout import LAYOUTS, find_dir, missing
from lab.data.disk.splits import check_labels, check_split

SIDE = 96
_DEFAULT_NAMES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def read_images(path: Path) -> np.ndarray:
    """(N, 3, 96, 96) uint8 from an STL-10 _X.bin file (each channel stored column-major)."""
    raw = np.fromfile(path, dtype=np.uint8)
    per_image = 3 * SIDE * SIDE
    if raw.size % per_image:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {per_image}-byte images")
    return raw.reshape(-1, 3, SIDE, SIDE).transpose(0, 1, 3, 2)


def load_stl10(root: Path, split: str = "train") -> ImageDataset:
    """STL-10 split 'train' (5k), 'test' (8k) or 'unlabeled' (100k, labels -1) → (N, 3, 96, 96) uint8."""
    check_split("stl10", split, ("train", "test", "unlabeled"))
    root = Path(root)
    folder = find_dir("stl10", root)
    x_path = folder / f"{split}_X.bin"
    if not x_path.is_file():
        raise missing(LAYOUTS["stl10"], root, f"{x_path} not found")
    images = read_images(x_path)
    if split == "unlabeled":
        labels = np.full(len(images), -1, dtype=np.int64)
    else:
        labels = np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8).astype(np.int64) - 1
        check_labels("stl10", labels, 10)
        if len(labels) != len(images):
            raise ValueError(f"stl10 {split}: {len(images)} images but {len(labels)} labels")
    names_file = folder / "class_names.txt"
    names = names_file.read_text().split() if names_file.is_file() else _DEFAULT_NAMES
    return ImageDataset(
        name="stl10",
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(labels),
        num_classes=10,
        class_names=names,
    )
