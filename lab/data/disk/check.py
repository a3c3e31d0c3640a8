"""What `lab data check` reports: where a dataset was found, its splits, shapes, classes, size on disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab.data.base import ImageDataset
from lab.data.disk import iebench
from lab.data.disk.layout import LAYOUTS, find_dir
from lab.data.disk import READERS, SPLITS

EMBEDDED = ("shapes", "digits")
NAMES = (*EMBEDDED, *LAYOUTS)


@dataclass
class SplitSummary:
    """One split: images (or objects × views for 3DIEBench), per-image shape, distinct labels present."""

    split: str
    count: int
    image_shape: tuple[int, ...]
    labels_present: int
    note: str = ""


@dataclass
class DatasetSummary:
    name: str
    location: str
    size_bytes: int | None
    num_classes: int
    class_names: list[str]
    splits: list[SplitSummary] = field(default_factory=list)


def _split_summary(split: str, ds: ImageDataset, note: str = "") -> SplitSummary:
    present = int(ds.labels[ds.labels >= 0].unique().numel())
    return SplitSummary(split, len(ds), tuple(ds.images.shape[1:]), present, note)


def _disk_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _embedded(name: str) -> DatasetSummary:
    try:
        from lab.data.registry import load_dataset
    except ImportError as err:
        raise RuntimeError(f"embedded dataset {name!r} needs lab.data.registry, which is not importable: {err}") from None
    loaded = {split: load_dataset(name, None, split) for split in ("train", "test")}
    first = loaded["train"]
    summary = DatasetSummary(name, "embedded (generated in memory)", None, first.num_classes, first.class_names)
    summary.splits = [_split_summary(split, ds) for split, ds in loaded.items()]
    return summary


def _stl10_unlabeled(folder: Path) -> SplitSummary:
    """Counted from the file size: 100k images are 2.7 GB, too many to load for a check."""
    path = folder / "unlabeled_X.bin"
    if not path.is_file():
        return SplitSummary("unlabeled", 0, (), 0, "unlabeled_X.bin absent")
    return SplitSummary("unlabeled", path.stat().st_size // (3 * 96 * 96), (3, 96, 96), 0, "counted from file size; labels -1")


def _iebench(root: Path) -> DatasetSummary:
    folder = root / LAYOUTS["3diebench"].dirs[0]
    splits, names, num_classes = [], [], 0
    for split in ("train", "test"):
        objects, labels, names_split = iebench.objects_for_split(root, split)
        views = len(list((folder / objects[0]).glob("image_*.jpg")))
        sample = iebench.load_3diebench(root, split, num_objects=1, views_per_object=1, image_size=128)
        note = (f"{len(objects)} objects × {views} views (counted in the first object); "
                f"latents {', '.join(sample.latents)}; shape after resize to 128")
        splits.append(SplitSummary(split, len(objects) * views, tuple(sample.images.shape[1:]),
                                   len(set(labels.tolist())), note))
        names, num_classes = names or names_split, max(num_classes, len(names_split))
    return DatasetSummary("3diebench", str(folder), _disk_size(folder), num_classes, names, splits)


def summarize(name: str, root: Path) -> DatasetSummary:
    """Load (or, for 3DIEBench and STL-10 unlabeled, count) each split of dataset `name`.

    Raises DatasetMissingError with the expected layout when it is not under root, ValueError
    for an unknown name or malformed files.
    """
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    if name in EMBEDDED:
        return _embedded(name)
    root = Path(root)
    if name == "3diebench":
        return _iebench(root)
    folder = find_dir(name, root)
    loaded = {split: READERS[name](root, split) for split in SPLITS[name] if split != "unlabeled"}
    first = next(iter(loaded.values()))
    summary = DatasetSummary(name, str(folder), _disk_size(folder), first.num_classes, first.class_names)
    summary.splits = [_split_summary(split, ds) for split, ds in loaded.items()]
    if name == "stl10":
        summary.splits.append(_stl10_unlabeled(folder))
    return summary
