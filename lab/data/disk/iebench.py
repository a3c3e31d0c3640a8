"""3DIEBench (Garrido et al., SIE): renders of ShapeNet objects with their rotation latents.

Assumptions, from the dataset README and SIE's loaders: ``latent_k.npy`` holds rotX, rotY, rotZ
(extrinsic Tait-Bryan "xyz", radians) then floor hue, light θ, light φ, light hue. Rotations are
converted with scipy to quaternions in scalar-last (x, y, z, w) order, not canonicalised (as
SIE and seq-JEPA). Split: SIE's ``{train,val}_{images,labels}.npy`` when present in the dataset
folder ('test' reads the val files); otherwise a deterministic split of the scanned folders —
synsets sorted (class id = position), objects sorted, every fifth object of a synset to 'test'.

The full set (52,472 objects × 50 renders; the train split alone is ≈ 96 GiB as uint8 at 128²)
does not fit in memory. Two ways to read it:
- in memory: ``num_objects`` (a seeded subset of objects), ``views_per_object`` and
  ``image_size`` bound what is read, and a load over ``max_gib`` stops before reading with
  the numbers to change;
- streamed (``stream=True``): the renders are decoded and resized once into a uint8 cache
  file (``lab.data.disk.cache``, progress bar), and the dataset's images are read from it per
  batch, so memory does not grow with the split (see docs/scale.md for the figure).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from lab.data.base import ImageDataset
from lab.data.disk.cache import DiskImages, batched, open_cache, write_cache
from lab.data.disk.layout import LAYOUTS, missing
from lab.data.disk.splits import check_split

VIEWS = 50
_SPLIT_FILES = {"train": "train", "test": "val"}


def _scan(folder: Path, split: str) -> tuple[list[str], np.ndarray, list[str]]:
    """Objects ('<synset>/<object>'), their class ids and the class names from the folder tree."""
    synsets = sorted(d.name for d in folder.iterdir() if d.is_dir())
    objects, labels = [], []
    for cls, synset in enumerate(synsets):
        members = sorted(d.name for d in (folder / synset).iterdir() if d.is_dir())
        chosen = [m for i, m in enumerate(members) if (i % 5 == 4) == (split == "test")]
        objects += [f"{synset}/{m}" for m in chosen]
        labels += [cls] * len(chosen)
    return objects, np.asarray(labels, dtype=np.int64), synsets


def _from_split_files(folder: Path, split: str) -> tuple[list[str], np.ndarray, list[str]]:
    """Objects and class ids from SIE's split files; class names are the synsets seen per label."""
    stem = _SPLIT_FILES[split]
    objects = [str(p).strip("/") for p in np.load(folder / f"{stem}_images.npy")]
    labels = np.load(folder / f"{stem}_labels.npy").astype(np.int64)
    if len(objects) != len(labels):
        raise ValueError(f"{folder}: {stem}_images.npy lists {len(objects)} objects but {stem}_labels.npy has {len(labels)} labels")
    names = [""] * (int(labels.max()) + 1 if labels.size else 0)
    for obj, label in zip(objects, labels):
        names[label] = names[label] or obj.split("/")[0]
    return objects, labels, names


def objects_for_split(root: Path, split: str) -> tuple[list[str], np.ndarray, list[str]]:
    """The split's objects ('<synset>/<object>' under the dataset folder), class ids (n_objects,) and class names."""
    check_split("3diebench", split, ("train", "test"))
    root = Path(root)
    layout = LAYOUTS["3diebench"]
    folder = root / layout.dirs[0]
    if not folder.is_dir():
        raise missing(layout, root, "dataset folder not found")
    stem = _SPLIT_FILES[split]
    has_split = (folder / f"{stem}_images.npy").is_file() and (folder / f"{stem}_labels.npy").is_file()
    objects, labels, names = _from_split_files(folder, split) if has_split else _scan(folder, split)
    if not objects:
        raise missing(layout, root, f"no object folders for split {split!r} in {folder}")
    return objects, labels, names


def _read_view(obj_dir: Path, view: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One render resized to size×size as (3, size, size) uint8, and its latent vector."""
    image_path, latent_path = obj_dir / f"image_{view}.jpg", obj_dir / f"latent_{view}.npy"
    for path in (image_path, latent_path):
        if not path.is_file():
            raise FileNotFoundError(f"3diebench: {path} is missing; the object folder is incomplete")
    with Image.open(image_path) as img:
        pixels = np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    return pixels.transpose(2, 0, 1), np.load(latent_path).astype(np.float64)


def _decode(jobs: list[tuple[Path, int]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Renders (n, 3, size, size) uint8 and latents (n, L) float64 for (object folder, view) jobs."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # PIL decodes outside the GIL
        decoded = list(pool.map(lambda job: _read_view(*job, size), jobs))
    latents = np.stack([lat for _, lat in decoded])
    if latents.ndim != 2 or latents.shape[1] < 3:
        raise ValueError(f"3diebench: latent files must hold at least 3 values (rotX, rotY, rotZ), got shape {latents.shape[1:]}")
    return np.stack([img for img, _ in decoded]), latents


def cache_key(folder: Path, objects: list[str], views: int, size: int) -> tuple[str, dict]:
    """The cache folder name and the key a cache of these renders is recorded under."""
    key = {"dataset": str(folder.resolve()), "objects": objects, "views": views, "size": size}
    return f"3diebench-{size}px-{len(objects)}obj-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:10]}", key


def _cached(folder: Path, objects: list[str], jobs: list[tuple[Path, int]], size: int, cache_dir: Path,
            progress: bool) -> tuple[DiskImages, np.ndarray]:
    """The renders of `jobs` from a cache under cache_dir (built first if absent), and their latents."""
    name, key = cache_key(folder, objects, len(jobs) // len(objects), size)
    found = open_cache(cache_dir / name, key)
    if found is None:
        latents: list[np.ndarray] = []

        def decode(part: list[tuple[Path, int]]) -> np.ndarray:
            images, lat = _decode(part, size)
            latents.append(lat)
            return images

        # 512 renders per chunk: what the writer holds at once (≈ 24 MiB at 128²).
        images = write_cache(cache_dir / name, (len(jobs), 3, size, size), batched(jobs, 512, decode),
                             lambda: {"latents": np.concatenate(latents)}, key,
                             description=f"3diebench → {cache_dir / name}", progress=progress)
        return images, np.concatenate(latents)
    return found[0], found[1]["latents"]


def load_3diebench(
    root: Path,
    split: str = "train",
    *,
    num_objects: int | None = None,
    views_per_object: int = VIEWS,
    image_size: int = 128,
    seed: int = 0,
    max_gib: float = 16.0,
    stream: bool = False,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> ImageDataset:
    """3DIEBench split 'train' or 'test' → images (N, 3, S, S) uint8 with N = objects × views,
    labels (N,), groups (N,) object index, latents {"quat": (N, 4) xyzw, "euler": (N, 3),
    "scene": (N, L−3) floor hue, light θ, light φ, light hue}.

    stream: images are a `DiskImages` over a cache in `cache_dir` (default
    <root>/3DIEBench-cache), built on first use; `max_gib` then does not apply.
    """
    objects, labels, names = objects_for_split(root, split)
    folder = Path(root) / LAYOUTS["3diebench"].dirs[0]
    if not 1 <= views_per_object <= VIEWS:
        raise ValueError(f"views_per_object must be in 1…{VIEWS}, got {views_per_object}")
    if num_objects is not None and num_objects < 1:
        raise ValueError(f"num_objects must be >= 1, got {num_objects}")
    if num_objects is not None and num_objects < len(objects):
        keep = np.sort(np.random.default_rng(seed).choice(len(objects), num_objects, replace=False))
        objects, labels = [objects[i] for i in keep], labels[keep]
    gib = len(objects) * views_per_object * 3 * image_size**2 / 2**30
    if gib > max_gib and not stream:
        raise ValueError(
            f"3diebench {split}: {len(objects)} objects × {views_per_object} views at {image_size}² is {gib:.1f} GiB "
            f"(limit {max_gib:g}); stream it from a disk cache (data.stream=disk), lower num_objects, "
            "views_per_object or image_size, or raise max_gib"
        )
    jobs = [(folder / obj, v) for obj in objects for v in range(views_per_object)]
    if stream:
        images, latents = _cached(folder, objects, jobs, image_size, Path(cache_dir or Path(root) / "3DIEBench-cache"), progress)
    else:
        pixels, latents = _decode(jobs, image_size)
        images = torch.from_numpy(pixels)
    quat = Rotation.from_euler("xyz", latents[:, :3]).as_quat()
    return ImageDataset(
        name="3diebench",
        images=images,
        labels=torch.from_numpy(np.repeat(labels, views_per_object)),
        num_classes=len(names),
        class_names=names,
        groups=torch.arange(len(objects)).repeat_interleave(views_per_object),
        latents={
            "quat": torch.from_numpy(quat).float(),
            "euler": torch.from_numpy(latents[:, :3]).float(),
            "scene": torch.from_numpy(latents[:, 3:]).float(),
        },
    )
