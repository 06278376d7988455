"""Data loading: IDX files (the MNIST format) and Fashion-MNIST, from local files."""

from ._idx import load_fashion_mnist, load_idx, load_idx_folder

__all__ = ["load_fashion_mnist", "load_idx", "load_idx_folder"]
