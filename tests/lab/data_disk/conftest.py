"""Writers of tiny datasets in each on-disk format, with known pixels and labels."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pattern(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Deterministic uint8 images (n, *shape)."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 3) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = pattern(5 * per_batch + 2, (3, 32, 32), 0)
    labels = np.arange(len(images)) % 10
    for b in range(5):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        batch = {b"data": images[sl].reshape(per_batch, -1), b"labels": labels[sl].tolist(), b"batch_label": b"x"}
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    test = {b"data": images[-2:].reshape(2, -1), b"labels": labels[-2:].tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)], b"num_cases_per_batch": per_batch}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"train_x": images[:-2], "train_y": labels[:-2], "test_x": images[-2:], "test_y": labels[-2:]}


def write_cifar100(root: Path) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n, seed in (("train", 4, 1), ("test", 3, 2)):
        images = pattern(n, (3, 32, 32), seed)
        fine = np.array([99, 0, 50, 7][:n])
        (folder / split).write_bytes(pickle.dumps(
            {b"data": images.reshape(n, -1), b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist()}, protocol=5))
        out[f"{split}_x"], out[f"{split}_y"] = images, fine
    meta = {b"fine_label_names": [f"f{i}".encode() for i in range(100)], b"coarse_label_names": [b"c"] * 20}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return out


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, gz: bool, folder: str = "MNIST/raw") -> dict[str, np.ndarray]:
    target = root / folder
    target.mkdir(parents=True)
    out = {}
    for prefix, split, n in (("train", "train", 5), ("t10k", "test", 3)):
        images, labels = pattern(n, (28, 28), n), np.arange(n) % 10
        for kind, data in (("images-idx3", images), ("labels-idx1", labels)):
            path = target / f"{prefix}-{kind}-ubyte"
            if gz:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(_idx(data)))
            else:
                path.write_bytes(_idx(data))
        out[f"{split}_x"], out[f"{split}_y"] = images, labels
    return out


def write_stl10(root: Path) -> dict[str, np.ndarray]:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", 3), ("test", 2), ("unlabeled", 4)):
        images = pattern(n, (3, 96, 96), n + 10)
        # The binary stores each channel column-major: transpose H and W before writing.
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())
        out[f"{split}_x"] = images
        if split != "unlabeled":
            labels = np.array([1, 10, 5][:n], dtype=np.uint8)
            (folder / f"{split}_y.bin").write_bytes(labels.tobytes())
            out[f"{split}_y"] = labels.astype(np.int64) - 1
    (folder / "class_names.txt").write_text("\n".join(f"n{i}" for i in range(10)) + "\n")
    return out


def write_3diebench(root: Path, synsets: int = 2, objects: int = 5, views: int = 50, size: int = 16) -> Path:
    """Object folders with solid-colour PNG-in-JPEG renders and latents; returns the dataset folder."""
    folder = root / "3DIEBench"
    rng = np.random.default_rng(3)
    for s in range(synsets):
        for o in range(objects):
            obj = folder / f"0{s}000000" / f"obj{o}"
            obj.mkdir(parents=True)
            for v in range(views):
                colour = (40 * s + 5 * o, 3 * v, 200)
                Image.new("RGB", (size, size), colour).save(obj / f"image_{v}.jpg", quality=95)
                latent = np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, 3), rng.uniform(0, 1, 4)])
                np.save(obj / f"latent_{v}.npy", latent)
    return folder


@pytest.fixture
def writers():
    return {"cifar10": write_cifar10, "cifar100": write_cifar100, "mnist": write_mnist,
            "stl10": write_stl10, "3diebench": write_3diebench}
