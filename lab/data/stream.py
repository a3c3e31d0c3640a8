"""Streams for continual seq-JEPA: non-IID data arriving in order, each sample seen once.

- Class-incremental tasks: the classes are split (in a seeded order) into `tasks` groups; the
  stream shows every sample of task 1's classes (shuffled within the task), then task 2's, …
- The null stream (`iid_order`): the same samples shuffled over all tasks, cut into segments of
  the tasks' lengths — the control whose "forgetting" is what noise and drift alone give.
- A drifting transformation distribution: numeric view settings (scale range, colour strength,
  rotation range, shift) move linearly from a start to an end value along the stream.
- A colour domain per task (`task_tint`): the images of each task's classes are tinted by that
  task's RGB gains, in the stream and in the eval splits alike (class- and domain-incremental).
- Small batches: `batches` cuts the stream into batches of `batch_size` indices.
- The images stay on the host: `DeviceWindow` moves only the current batch's images to the
  device and makes their views there with the configured (batched, on-device) view sampler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from lab.config import ViewsConfig
from lab.data.base import ImageDataset
from lab.data.views import Sequence, build_view_sampler


def task_classes(num_classes: int, tasks: int, seed: int) -> list[list[int]]:
    """Split classes 0..num_classes−1, in a seeded random order, into `tasks` near-equal groups."""
    if not 1 <= tasks <= num_classes:
        raise ValueError(f"stream.tasks must be between 1 and the {num_classes} classes, got {tasks}")
    order = torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()
    return [sorted(order[i::tasks]) for i in range(tasks)]


def class_incremental_order(labels: torch.Tensor, groups: list[list[int]], seed: int) -> list[torch.Tensor]:
    """Per task, the indices of its classes' samples in a seeded random order. labels: (N,)."""
    gen = torch.Generator().manual_seed(seed + 1)
    out = []
    for classes in groups:
        idx = torch.isin(labels, torch.tensor(classes)).nonzero().squeeze(1)
        out.append(idx[torch.randperm(idx.numel(), generator=gen)])
    return out


def iid_order(order: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """The null stream: every index of `order` in one seeded shuffle, cut into segments as long as
    its tasks, so the IID stream has the same samples, batches, steps and evaluation points as the
    class-incremental one, and no shift between segments."""
    everything = torch.cat(order)
    shuffled = everything[torch.randperm(everything.numel(), generator=torch.Generator().manual_seed(seed + 2))]
    return list(shuffled.split([o.numel() for o in order]))


def tint_tasks(ds: ImageDataset, groups: list[list[int]], tints: list[list[float]]) -> ImageDataset:
    """A copy of ds whose images of task t's classes are scaled per channel by tints[t] (3 gains).

    A gain g ≥ 0 scales the channel (x → g·x); a negative one inverts it first (x → |g|·(255 − x)),
    so a task can differ from another in polarity as well as in colour. Grayscale images are
    repeated to RGB first; values are clipped to the uint8 range. The tint is a property of the
    data (every split is tinted alike), so each task has its own colour domain."""
    if not isinstance(ds.images, torch.Tensor):
        raise ValueError(f"stream.task_tint needs an in-memory dataset; {ds.name} is read from disk")
    if len(tints) != len(groups):
        raise ValueError(f"stream.task_tint has {len(tints)} tints for {len(groups)} tasks; give one [r, g, b] per task")
    img = ds.images.expand(-1, 3, -1, -1).float()  # (N, 3, H, W)
    for classes, gains in zip(groups, tints, strict=True):
        rows = torch.isin(ds.labels, torch.tensor(classes))
        g = torch.tensor(gains, dtype=img.dtype).view(1, 3, 1, 1)
        x = img[rows]
        img[rows] = torch.where(g < 0, (255 - x) * g.abs(), x * g)
    return dataclasses.replace(ds, images=img.round().clamp_(0, 255).to(torch.uint8))


@dataclass
class StreamBatch:
    idx: torch.Tensor  # (b,) indices into the host dataset
    task: int  # 0-based task the batch belongs to
    seen: int  # samples seen before this batch
    progress: float  # position of the batch in the whole stream, in [0, 1)


def batches(order: list[torch.Tensor], batch_size: int) -> Iterator[StreamBatch]:
    """The stream cut into batches, task after task; a task's last short batch is kept."""
    total, seen = sum(o.numel() for o in order), 0
    for task, idx in enumerate(order):
        for chunk in idx.split(batch_size):
            yield StreamBatch(chunk, task, seen, seen / total)
            seen += chunk.numel()


def drifted(views: ViewsConfig, drift: dict[str, list], progress: float) -> ViewsConfig:
    """The view settings at `progress` ∈ [0, 1]: each drifted field interpolated from start to end."""
    def lerp(a, b):
        if isinstance(a, (list, tuple)):
            return tuple(lerp(x, y) for x, y in zip(a, b, strict=True))
        return a + (b - a) * progress

    return views.model_copy(update={k: lerp(start, end) for k, (start, end) in drift.items()})


class DeviceWindow:
    """Views of host-held images: each call moves only the requested images to the device.

    The view sampler is built once over the head of the dataset (its per-channel normalisation
    comes from the first 4,096 images, as for the whole-dataset samplers); per call its image and
    label slots are pointed at the batch, so the device holds one batch of images at a time.
    """

    def __init__(self, ds: ImageDataset, views: ViewsConfig, device: torch.device) -> None:
        if views.kind == "quat":
            raise ValueError("streams draw views by transforming one image; 'quat' views (3DIEBench renders) are not supported")
        self.ds, self.device = ds, device
        head = ImageDataset(ds.name, ds.images[:4096], ds.labels[:4096], ds.num_classes, ds.class_names)
        self.sampler = build_view_sampler(head, views, device)
        self.num_classes, self.action_dim, self.action_names = ds.num_classes, self.sampler.action_dim, self.sampler.action_names

    def sample(self, idx: torch.Tensor, num_views: int, views: ViewsConfig | None = None) -> Sequence:
        """idx: (b,) host indices → views (b, num_views, 3, H, W), actions, labels on the device."""
        self.sampler.images = self.ds.images[idx].to(self.device)
        self.sampler.labels = self.ds.labels[idx].to(self.device)
        if views is not None:
            self.sampler.cfg = views  # drifted settings; the affine sampler reads them per call
        return self.sampler.sample(torch.arange(idx.numel(), device=self.device), num_views)
