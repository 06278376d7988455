"""Data loading: IDX files (the MNIST format), and MNIST and Fashion-MNIST,
read from local files or downloaded and cached."""

from ._fetch import fetch_fashion_mnist, fetch_mnist
from ._idx import load_fashion_mnist, load_idx, load_idx_folder

__all__ = [
    "fetch_fashion_mnist",
    "fetch_mnist",
    "load_fashion_mnist",
    "load_idx",
    "load_idx_folder",
]
