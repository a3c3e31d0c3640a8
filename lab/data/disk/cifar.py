"""CIFAR-10 and CIFAR-100 from the official python pickle batches."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab.data.base import ImageDataset
from lab.data.disk.layout import find_dir
from lab.data.disk.splits import check_labels, check_split

# Unpickling can run arbitrary code, and data roots come from anywhere: allow only what the
# CIFAR batches contain (numpy arrays, as pickled by numpy 1 or 2, and protocol-2 bytes, which
# Python 3 pickles through _codecs.encode) besides builtin containers.
_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset pickle")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict[bytes, Any]:
    """A CIFAR pickle as a dict with bytes keys; ValueError naming the file if it is not one."""
    try:
        with path.open("rb") as f:
            data = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as err:
        raise ValueError(f"{path} is not a CIFAR python pickle: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a CIFAR python pickle: it holds a {type(data).__name__}, not a dict")
    return data


def _images(batch: dict[bytes, Any], path: Path) -> np.ndarray:
    """(N, 3, 32, 32) uint8 from a batch's b'data' rows of 3072 bytes (R plane, G, B; row-major)."""
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be (N, 3072), got {data.shape}")
    return data.reshape(-1, 3, 32, 32)


def _names(meta: dict[bytes, Any], key: bytes) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(key, [])]


def _build(name: str, batches: list[Path], label_key: bytes, names: list[str], num_classes: int) -> ImageDataset:
    images, labels = [], []
    for path in batches:
        batch = read_pickle(path)
        lacking = [k.decode() for k in (b"data", label_key) if k not in batch]
        if lacking:
            raise ValueError(f"{path} lacks the key(s) {', '.join(lacking)}; is it a {name} batch?")
        images.append(_images(batch, path))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    label_array = np.concatenate(labels)
    check_labels(name, label_array, num_classes)
    return ImageDataset(
        name=name,
        images=torch.from_numpy(np.concatenate(images)),
        labels=torch.from_numpy(label_array),
        num_classes=num_classes,
        class_names=names,
    )


def load_cifar10(root: Path, split: str = "train") -> ImageDataset:
    """CIFAR-10 split 'train' (data_batch_1..5, those present) or 'test' → (N, 3, 32, 32) uint8, 10 classes."""
    check_split("cifar10", split, ("train", "test"))
    folder = find_dir("cifar10", Path(root))
    files = sorted(folder.glob("data_batch_[1-5]")) if split == "train" else [folder / "test_batch"]
    names = _names(read_pickle(folder / "batches.meta"), b"label_names")
    return _build("cifar10", files, b"labels", names, 10)


def load_cifar100(root: Path, split: str = "train") -> ImageDataset:
    """CIFAR-100 split 'train' or 'test' with the 100 fine labels → (N, 3, 32, 32) uint8."""
    check_split("cifar100", split, ("train", "test"))
    folder = find_dir("cifar100", Path(root))
    names = _names(read_pickle(folder / "meta"), b"fine_label_names")
    return _build("cifar100", [folder / split], b"fine_labels", names, 100)
