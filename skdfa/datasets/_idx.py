"""Readers for IDX files (the MNIST format) and for Fashion-MNIST.

An IDX file is a 4-byte magic number ``0x00 0x00 <type code> <n_dims>``, then
``n_dims`` big-endian uint32 sizes, then the values in big-endian C order
(http://yann.lecun.com/exdb/mnist/). Files may be gzipped.
"""

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

FASHION_MNIST_HOME = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the files."""

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

_SUBSETS = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({exc}).") from None


def load_idx(path):
    """Read one IDX file, gzipped or not.

    Parameters
    ----------
    path : str or path-like
        The file. Gzip compression is detected from the content, not the name.

    Returns
    -------
    array : ndarray
        The values, with the shape stored in the file, in native byte order
        (``uint8`` for MNIST-style images and labels).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not IDX (wrong magic number or type code), is
        truncated, or has bytes after the data.

    Examples
    --------
    >>> import tempfile, os
    >>> from skdfa.datasets import load_idx
    >>> raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "tiny-idx2-ubyte")
    ...     with open(path, "wb") as f:
    ...         _ = f.write(raw)
    ...     load_idx(path)
    array([[1, 2, 3],
           [4, 5, 6]], dtype=uint8)
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (the magic number must start with two zero "
            f"bytes, got {raw[:4].hex() or 'an empty file'})."
        )
    code, n_dims = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown IDX type code 0x{code:02x} (expected one of "
            f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})."
        )
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header ({len(raw)} bytes, {n_dims} dimensions "
            f"need {header})."
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=n_dims, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX file {problem}: shape {shape} of {dtype.name} needs "
            f"{expected} bytes, the file has {len(raw)}."
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_file(folder, prefix, kind):
    """The file ``<prefix>-<kind>-idx?-ubyte[.gz]`` (or ``<prefix>-<kind>.idx?-ubyte``)."""
    for pattern in (f"{prefix}-{kind}-idx*", f"{prefix}-{kind}.idx*"):
        matches = sorted(folder.glob(pattern))
        if matches:
            return matches[0]
    raise FileNotFoundError(
        f"no {prefix}-{kind}-idx*-ubyte[.gz] file in {folder}."
    )


def _load_split(folder, prefix):
    """Images as float32 rows scaled to [0, 1] and integer labels."""
    images_path = _find_file(folder, prefix, "images")
    labels_path = _find_file(folder, prefix, "labels")
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim < 2 or labels.ndim != 1:
        raise ValueError(
            f"{images_path} / {labels_path}: expected images of 2 or more "
            f"dimensions and 1-D labels, got shapes {images.shape} and {labels.shape}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has "
            f"{labels.shape[0]} labels."
        )
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    if images.dtype == np.uint8:
        X /= 255.0
    return X, labels.astype(np.int64)


def load_idx_folder(folder, *, subset="train"):
    """Load an MNIST-style folder of IDX files as float32 features and labels.

    The folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each possibly
    gzipped (``.gz``); this is how MNIST, Fashion-MNIST and KMNIST ship.

    Parameters
    ----------
    folder : str or path-like
        The folder.
    subset : {"train", "test", "all"}, default="train"
        The shipped training set, the shipped test set (``t10k``), or both,
        training samples first.

    Returns
    -------
    X : ndarray of shape (n_samples, n_pixels), dtype float32
        One flattened image per row; ``uint8`` pixels are scaled to [0, 1].
    y : ndarray of shape (n_samples,), dtype int64
        The labels.

    Examples
    --------
    >>> import tempfile, gzip, os
    >>> from skdfa.datasets import load_idx_folder
    >>> images = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 255, 51, 102])
    >>> labels = bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 3])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name, raw in [("train-images-idx3-ubyte.gz", images),
    ...                       ("train-labels-idx1-ubyte.gz", labels)]:
    ...         with gzip.open(os.path.join(folder, name), "wb") as f:
    ...             _ = f.write(raw)
    ...     X, y = load_idx_folder(folder)
    >>> X
    array([[0. , 1. ],
           [0.2, 0.4]], dtype=float32)
    >>> y
    array([7, 3])
    """
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {sorted(_SUBSETS)}, got {subset!r}.")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of IDX files.")
    parts = [_load_split(folder, prefix) for prefix in _SUBSETS[subset]]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([X for X, _ in parts]), np.concatenate([y for _, y in parts])


def load_fashion_mnist(data_home=None, *, subset="train", return_X_y=False):
    """Load Fashion-MNIST (Xiao et al., 2017) from local IDX files.

    Nothing is downloaded. By default the files are those of Debian's
    ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``),
    in ``/usr/share/datasets/fashion-mnist``; any folder with the four files
    of https://github.com/zalandoresearch/fashion-mnist works too.

    =================   ==============
    Classes                         10
    Samples (train)              60000
    Samples (test)               10000
    Features            784 (28 x 28)
    Feature values      float32, [0, 1]
    =================   ==============

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``;
        ``None`` uses the environment variable ``SKDFA_FASHION_MNIST`` if set,
        else Debian's folder.
    subset : {"train", "test", "all"}, default="train"
        The split as shipped: 60000 training samples, 10000 test samples, or
        all 70000 with the training samples first.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (float32 array of shape (n_samples, 784)), ``target`` (int64
        labels 0-9), ``target_names`` (the clothing classes) and ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If the files are missing; the message says how to get them.

    Examples
    --------
    >>> from skdfa.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:3]  # doctest: +SKIP
    ((10000, 784), dtype('float32'), array([9, 2, 1]))
    """
    if data_home is None:
        data_home = os.environ.get("SKDFA_FASHION_MNIST", FASHION_MNIST_HOME)
    data_home = Path(data_home)
    try:
        X, y = load_idx_folder(data_home, subset=subset)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"Fashion-MNIST not found ({exc}) Get it with `apt-get install "
            "dataset-fashion-mnist`, or put the four IDX files of "
            "https://github.com/zalandoresearch/fashion-mnist in a folder and "
            "pass it as data_home."
        ) from None
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        target_names=list(FASHION_MNIST_CLASSES),
        DESCR=(
            "Fashion-MNIST: 28x28 grey-scale images of 10 clothing classes, "
            f"subset={subset!r}, read from {data_home}."
        ),
    )
