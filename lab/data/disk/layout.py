"""Where each on-disk dataset lives under the data root, what its files look like, where to get it.

One ``Layout`` per dataset drives the readers (which folder to open), the missing-dataset
message, ``lab data download`` instructions and docs/data.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.data.base import DatasetMissingError


@dataclass(frozen=True)
class Layout:
    """dirs: folders under the root tried in order; required: files that must exist in the folder."""

    name: str
    dirs: tuple[str, ...]
    required: tuple[str, ...]
    tree: str
    urls: tuple[str, ...]
    how: str


LAYOUTS: dict[str, Layout] = {
    "cifar10": Layout(
        name="cifar10",
        dirs=("cifar-10-batches-py",),
        required=("data_batch_1", "test_batch", "batches.meta"),
        tree="""cifar-10-batches-py/
  data_batch_1 … data_batch_5   python pickles: b'data' (10000, 3072) uint8, b'labels'
  test_batch
  batches.meta                  b'label_names'""",
        urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
        how="extract the tarball into the data root (it contains cifar-10-batches-py/)",
    ),
    "cifar100": Layout(
        name="cifar100",
        dirs=("cifar-100-python",),
        required=("train", "test", "meta"),
        tree="""cifar-100-python/
  train   python pickle: b'data' (50000, 3072) uint8, b'fine_labels', b'coarse_labels'
  test    same, 10000 images
  meta    b'fine_label_names', b'coarse_label_names'""",
        urls=("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
        how="extract the tarball into the data root (it contains cifar-100-python/)",
    ),
    "mnist": Layout(
        name="mnist",
        dirs=("MNIST/raw", "mnist", "MNIST"),
        required=("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        tree="""MNIST/raw/   (or mnist/)       each file plain or gzipped (.gz)
  train-images-idx3-ubyte    idx: 60000 × 28 × 28 uint8
  train-labels-idx1-ubyte    idx: 60000 uint8
  t10k-images-idx3-ubyte     idx: 10000 × 28 × 28 uint8
  t10k-labels-idx1-ubyte""",
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
        ),
        how="put the four files (gzipped is fine) in <data root>/MNIST/raw/",
    ),
    "stl10": Layout(
        name="stl10",
        dirs=("stl10_binary",),
        required=("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin"),
        tree="""stl10_binary/
  train_X.bin      5000 × 3 × 96 × 96 uint8, each image column-major
  train_y.bin      5000 uint8 labels 1…10
  test_X.bin       8000 images; test_y.bin
  unlabeled_X.bin  100000 images (split 'unlabeled', labels -1)
  class_names.txt  one name per line (optional)""",
        urls=("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),
        how="extract the tarball into the data root (it contains stl10_binary/)",
    ),
    "3diebench": Layout(
        name="3diebench",
        dirs=("3DIEBench",),
        required=(),
        tree="""3DIEBench/
  <synset id>/<object id>/       55 synsets, 52,472 objects
    image_0.jpg … image_49.jpg   256 × 256 renders
    latent_0.npy … latent_49.npy rotX, rotY, rotZ (extrinsic xyz Euler, radians),
                                 floor hue, light θ, light φ, light hue
  train_images.npy, train_labels.npy   optional split files from facebookresearch/SIE data/
  val_images.npy, val_labels.npy       (object paths '/<synset>/<object>' and class ids)""",
        urls=(
            "https://dl.fbaipublicfiles.com/SIE/3DIEBench.tar.gz",
            "https://github.com/facebookresearch/SIE/tree/main/data",
        ),
        how="extract the tarball (17 GB) into the data root; copy the SIE repository's "
        "data/{train,val}_{images,labels}.npy into 3DIEBench/ for the official split",
    ),
}


def missing(layout: Layout, root: Path, detail: str) -> DatasetMissingError:
    """The error for a dataset not found: where we looked, what was wrong, the layout, where to get it."""
    looked = ", ".join(str(root / d) for d in layout.dirs)
    tree = "\n".join(f"    {line}" for line in layout.tree.splitlines())
    return DatasetMissingError(
        f"{layout.name}: {detail}\n  looked in: {looked}\n  expected layout under the data root:\n{tree}\n"
        f"  get it: lab data download {layout.name} --data-root {root}\n  or by hand: {layout.how}"
    )


def find_dir(name: str, root: Path) -> Path:
    """The dataset's folder under root: the first candidate holding every required file
    (an idx file may also be gzipped); DatasetMissingError otherwise."""
    layout = LAYOUTS[name]
    for rel in layout.dirs:
        folder = root / rel
        if folder.is_dir() and all(_exists(folder / f) for f in layout.required):
            return folder
    present = [root / d for d in layout.dirs if (root / d).is_dir()]
    if present:
        lacking = [f for f in layout.required if not _exists(present[0] / f)]
        raise missing(layout, root, f"{present[0]} lacks {', '.join(lacking)}")
    raise missing(layout, root, "dataset folder not found")


def _exists(path: Path) -> bool:
    return path.is_file() or path.with_name(path.name + ".gz").is_file()
