"""On-disk datasets read from a data root with numpy (no torchvision): CIFAR-10/100, MNIST,
STL-10, 3DIEBench. Each ``load_<name>(root, split)`` returns an ``ImageDataset`` or raises
``DatasetMissingError`` naming where it looked and the expected layout (``layout.LAYOUTS``).
"""

from lab.data.disk.cifar import load_cifar10, load_cifar100
from lab.data.disk.iebench import load_3diebench
from lab.data.disk.mnist import load_mnist
from lab.data.disk.stl10 import load_stl10

READERS = {
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "mnist": load_mnist,
    "stl10": load_stl10,
    "3diebench": load_3diebench,
}
SPLITS = {
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "mnist": ("train", "test"),
    "stl10": ("train", "test", "unlabeled"),
    "3diebench": ("train", "test"),
}

__all__ = ["READERS", "SPLITS", "load_3diebench", "load_cifar10", "load_cifar100", "load_mnist", "load_stl10"]
