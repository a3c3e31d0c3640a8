"""`lab data download`: torchvision's downloaders where torchvision imports, else instructions.

torchvision is imported here and nowhere else in the lab: it only works where its build
matches torch's (a GPU machine with a matching CUDA torch), so the import is guarded.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from lab.data.disk.layout import LAYOUTS


def torchvision_datasets() -> ModuleType | None:
    """torchvision.datasets, or None when torchvision is absent or broken (any import failure)."""
    try:
        import torchvision.datasets as tvd
    except Exception:  # a torchvision built for another torch raises RuntimeError/OSError, not only ImportError
        return None
    return tvd


def instructions(name: str, root: Path) -> str:
    """Where to get dataset `name` and where to put it under root."""
    layout = LAYOUTS[name]
    urls = "\n".join(f"  {u}" for u in layout.urls)
    tree = "\n".join(f"  {line}" for line in layout.tree.splitlines())
    return (f"{name}: download\n{urls}\nthen {layout.how}.\nExpected under {root}:\n{tree}\n"
            f"Check with: lab data check {name} --data-root {root}")


def download(name: str, root: Path) -> str | None:
    """Download with torchvision into root (the layout the readers expect); returns a summary,
    or None when torchvision cannot be used or has no downloader for this dataset."""
    tvd = torchvision_datasets()
    if tvd is None or name == "3diebench":
        return None
    root.mkdir(parents=True, exist_ok=True)
    if name == "stl10":
        for split in ("train", "test", "unlabeled"):
            tvd.STL10(str(root), split=split, download=True)
    else:
        cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "mnist": tvd.MNIST}[name]
        for train in (True, False):
            cls(str(root), train=train, download=True)
    return f"{name}: downloaded with torchvision into {root}"
