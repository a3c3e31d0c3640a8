"""Synthetic 3DIEBench-layout trees, for benchmarks and the memory figure of docs/scale.md.

`write_tree`: object folders with JPEG renders (smooth colour fields, so JPEG sizes are
realistic) and latent files, in the layout `lab.data.disk.iebench` reads.
`write_sparse_split`: object folders only, plus the reader's uint8 cache as a sparse file at
full size (reads return zeros; no disk is used), so a paper-sized split (41,920 objects ×
50 renders × 128²×3 B ≈ 96 GiB) can be streamed where no real copy exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lab.data.disk.cache import DONE, IMAGES, META
from lab.data.disk.iebench import cache_key, objects_for_split


def write_tree(root: Path, synsets: int, objects: int, renders: int = 50, size: int = 256, seed: int = 0) -> Path:
    """synsets × objects folders of `renders` JPEGs (size²) and latents under root/3DIEBench."""
    rng = np.random.default_rng(seed)
    folder = root / "3DIEBench"
    yy, xx = np.mgrid[0:size, 0:size] / size
    for s in range(synsets):
        for o in range(objects):
            obj = folder / f"{s:08d}" / f"obj{o:05d}"
            obj.mkdir(parents=True, exist_ok=True)
            for v in range(renders):
                a, b, c = rng.uniform(0, 2 * np.pi, 3)
                field = np.stack([np.sin(a + 6 * xx), np.cos(b + 5 * yy), np.sin(c + 4 * (xx + yy))], -1)
                Image.fromarray(((field + 1) * 127.5).astype(np.uint8)).save(obj / f"image_{v}.jpg", quality=90)
                np.save(obj / f"latent_{v}.npy", np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, 3), rng.uniform(0, 1, 4)]))
    return folder


def write_sparse_split(root: Path, synsets: int, objects: int, renders: int = 50, size: int = 128,
                       cache_dir: Path | None = None, seed: int = 0) -> Path:
    """Folders for synsets × objects (split 'train' keeps 4 of 5) and a complete sparse cache of the
    train split as `load_3diebench(root, 'train', stream=True, image_size=size)` would build it."""
    folder = root / "3DIEBench"
    for s in range(synsets):
        for o in range(objects):
            (folder / f"{s:08d}" / f"obj{o:05d}").mkdir(parents=True, exist_ok=True)
    train, _, _ = objects_for_split(root, "train")
    name, key = cache_key(folder, train, renders, size)
    target = Path(cache_dir or root / "3DIEBench-cache") / name
    target.mkdir(parents=True, exist_ok=True)
    n = len(train) * renders
    with open(target / IMAGES, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, 3, size, size)})
        f.truncate(f.tell() + n * 3 * size * size)
    rng = np.random.default_rng(seed)
    latents = np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, (n, 3)), rng.uniform(0, 1, (n, 4))], 1).astype(np.float32)
    np.savez(target / META, latents=latents)
    (target / DONE).write_text(json.dumps(key, sort_keys=True))
    return target
