"""A uint8 image cache on disk, read per batch: what lets a split larger than memory train.

`DiskImages` looks like the (N, C, H, W) uint8 tensor an `ImageDataset` holds (shape, dtype,
ndim, len, indexing) but keeps the pixels in a `.npy` file and reads only the rows asked for.
The file is a standard `.npy` (`np.load(path, mmap_mode="r")` opens it), written once by
`write_cache` with a progress bar; later runs reuse it.

Reads use `os.preadv` into a fresh buffer rather than a memory map: pages of a mapped file count
in the process's resident set until the kernel evicts them, so a mapped reader's peak RSS grows
with the pages it has touched (up to the file size), while pread leaves them in the shared page
cache only. The memory a reader holds is then the batch it returned: rows × C·H·W bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

IMAGES = "images.npy"
META = "meta.npz"
DONE = "done.json"


class DiskImages:
    """(N, C, H, W) uint8 images in a `.npy` file; `images[idx]` reads rows → a CPU uint8 tensor."""

    dtype = torch.uint8
    ndim = 4

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if dtype != np.uint8 or len(shape) != 4 or fortran:
            raise ValueError(f"{self.path}: expected a C-order (N, C, H, W) uint8 array, got {shape} {dtype}")
        self.shape = torch.Size(shape)
        self.row_bytes = int(np.prod(shape[1:]))
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def _file(self) -> int:
        """One descriptor per process (DataLoader workers and torchrun ranks fork or spawn)."""
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def __getitem__(self, idx: int | slice | torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(idx, int):
            return self[torch.tensor([idx])][0]
        if isinstance(idx, slice):
            rows = np.arange(len(self))[idx]
        else:
            rows = torch.as_tensor(idx).cpu().reshape(-1).numpy()
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"{self.path}: row index out of range 0…{len(self) - 1}")
        out = np.empty((rows.size, *self.shape[1:]), dtype=np.uint8)
        fd, flat = self._file(), out.reshape(rows.size, -1)
        for i, row in enumerate(rows.tolist()):
            got = os.preadv(fd, [flat[i]], self.offset + row * self.row_bytes)
            if got != self.row_bytes:
                raise OSError(f"{self.path}: short read at row {row} ({got} of {self.row_bytes} bytes); the cache is truncated")
        return torch.from_numpy(out)

    def __getstate__(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "_fd"} | {"_fd": None}


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled)


def write_cache(
    folder: Path, shape: tuple[int, int, int, int], chunks: Iterable[np.ndarray], meta: Callable[[], dict[str, np.ndarray]],
    key: dict, *, description: str = "building cache", progress: bool = True,
) -> DiskImages:
    """Write `chunks` (each (n, C, H, W) uint8, in order, summing to shape[0]) as folder/images.npy,
    then `meta()` (small per-row arrays, called once the chunks are consumed) as folder/meta.npz.

    The file is written sequentially (memory: one chunk) under a temporary name and renamed when
    complete; `done.json` (holding `key`) is written last, so an interrupted build is redone.
    """
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / (IMAGES + ".partial")
    written = 0
    with open(partial, "wb") as f, _progress(progress) as bar:
        task = bar.add_task(description, total=shape[0])
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
        for chunk in chunks:
            if chunk.dtype != np.uint8 or chunk.shape[1:] != shape[1:]:
                raise ValueError(f"cache chunk {chunk.shape} {chunk.dtype} does not fit {shape} uint8")
            f.write(np.ascontiguousarray(chunk).tobytes())
            written += chunk.shape[0]
            bar.update(task, completed=written)
    if written != shape[0]:
        partial.unlink()
        raise ValueError(f"cache: {written} rows written, {shape[0]} expected")
    partial.rename(folder / IMAGES)
    np.savez(folder / META, **meta())
    (folder / DONE).write_text(json.dumps(key, sort_keys=True))
    return DiskImages(folder / IMAGES)


def open_cache(folder: Path, key: dict) -> tuple[DiskImages, dict[str, np.ndarray]] | None:
    """The cache in `folder` if it is complete and was built for `key`; else None."""
    done = folder / DONE
    if not done.is_file() or json.loads(done.read_text()) != json.loads(json.dumps(key, sort_keys=True)):
        return None
    with np.load(folder / META) as meta:
        return DiskImages(folder / IMAGES), dict(meta)


def batched(items: list, size: int, fn: Callable[[list], np.ndarray]) -> Iterator[np.ndarray]:
    """fn over consecutive slices of `items` of length `size`, lazily (one slice in memory)."""
    for start in range(0, len(items), size):
        yield fn(items[start : start + size])
