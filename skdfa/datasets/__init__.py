"""Data loading: IDX files (the MNIST format), MNIST and Fashion-MNIST, read
from local files or downloaded and cached, and CIFAR-10, downloaded and cached."""

from ._cifar import fetch_cifar10, load_cifar10_archive
from ._fetch import fetch_fashion_mnist, fetch_mnist
from ._idx import load_fashion_mnist, load_idx, load_idx_folder

__all__ = [
    "fetch_cifar10",
    "fetch_fashion_mnist",
    "fetch_mnist",
    "load_cifar10_archive",
    "load_fashion_mnist",
    "load_idx",
    "load_idx_folder",
]
