"""CIFAR-10, downloaded and cached like MNIST (``_fetch.py``).

The data set is one archive, ``cifar-10-python.tar.gz`` (Krizhevsky, 2009),
from the authors' page ``https://www.cs.toronto.edu/~kriz/cifar.html``. That
page publishes the archive's MD5, ``c58f30108f718f92721af3b95e74349a``, and
no SHA-256; the SHA-256 used here is the one Keras verifies the same archive
with (``keras/datasets/cifar10.py``, ``load_data``: ``file_hash``). Other
public code and run logs that hashed their own downloads record the same
SHA-256, one of them next to the authors' MD5 for the same file. Its size,
170,498,071 bytes, is the one the archive is served with. No network is
reachable where this module was written, so no download was hashed here.

The archive holds six pickled batches (``data_batch_1`` to ``_5``,
``test_batch``) of 10,000 images, each a row of 3072 bytes: the red, green
and blue 32x32 planes, row by row, that is (C, H, W) order. The batches are
read straight from the archive, without extracting it, by an unpickler that
builds nothing but numpy arrays and plain containers.
"""

import pickle
import tarfile
from pathlib import Path

import numpy as np
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

from ._fetch import _fetch_files

CIFAR10_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
"""Default CIFAR-10 mirror: the authors' page (the one torchvision and Keras use)."""

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"

CIFAR10_SHA256 = {
    CIFAR10_ARCHIVE: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
}
"""SHA-256 of the archive (Keras's ``cifar10.load_data``; the authors publish only its MD5)."""

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]

_BATCHES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}
_BATCHES["all"] = _BATCHES["train"] + _BATCHES["test"]

# What a CIFAR batch pickle may build: numpy arrays, nothing else (and bytes,
# which Python 3's protocol-2 pickles spell ``_codecs.encode``).
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"a CIFAR-10 batch may hold only numpy arrays, lists and bytes; "
                f"this one asks for {module}.{name}"
            )
        if module == "_codecs":
            return super().find_class(module, name)
        if name == "_reconstruct":
            # The function numpy pickles arrays with, under either module name.
            return np.ndarray.__reduce__(np.empty(0))[0]
        return getattr(np, name)


def _read_batch(archive, member):
    """``(images, labels)`` of one pickled batch of the opened archive."""
    with archive.extractfile(member) as stream:
        # Pickled by Python 2: its str keys and bytes are read as bytes.
        batch = _ArrayUnpickler(stream, encoding="bytes").load()
    images = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if images.ndim != 2 or images.shape[1] != 3072 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{member.name}: expected (n, 3072) images and n labels, got images "
            f"{images.shape} and labels {labels.shape}."
        )
    return images, labels


def load_cifar10_archive(path, *, subset="train"):
    """Read CIFAR-10's python archive (``cifar-10-python.tar.gz``).

    Parameters
    ----------
    path : str or path-like
        The archive, gzipped or not.
    subset : {"train", "test", "all"}, default="train"
        The five training batches (50000 images), the test batch (10000), or
        both, training first.

    Returns
    -------
    X : ndarray of shape (n_samples, 3072), dtype float32
        Pixels scaled to [0, 1], each row an image in (C, H, W) order (as
        torch flattens a (3, 32, 32) tensor).
    y : ndarray of shape (n_samples,), dtype int64
        Labels 0-9 (``CIFAR10_CLASSES``).

    See Also
    --------
    fetch_cifar10 : Download the archive, verify and cache it, then read it.

    Examples
    --------
    >>> from skdfa.datasets import load_cifar10_archive
    >>> X, y = load_cifar10_archive("cifar-10-python.tar.gz", subset="test")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (10000, 3072)
    """
    if subset not in _BATCHES:
        raise ValueError(f"subset must be one of {sorted(_BATCHES)}, got {subset!r}.")
    images, labels = [], []
    with tarfile.open(path, "r:*") as archive:
        members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
        missing = [name for name in _BATCHES[subset] if name not in members]
        if missing:
            raise ValueError(f"{path} has no {', '.join(missing)}: not CIFAR-10's python archive.")
        for name in _BATCHES[subset]:
            batch_images, batch_labels = _read_batch(archive, members[name])
            images.append(batch_images)
            labels.append(batch_labels)
    X = np.concatenate(images).astype(np.float32)
    X /= 255.0
    return X, np.concatenate(labels)


def fetch_cifar10(
    *,
    subset="train",
    data_home=None,
    mirrors=None,
    checksums=None,
    download_if_missing=True,
    return_X_y=False,
):
    """Load CIFAR-10 (Krizhevsky, 2009), downloading it on first use.

    The python archive (163 MiB) is downloaded from the first mirror that
    answers, checked against its SHA-256 and cached under scikit-learn's
    data home, as :func:`fetch_mnist` does; later calls read the cache and
    need no network. Downloads longer than a second show their progress on
    stderr.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        The training set (50000 images), the test set (10000), or both with
        the training images first.
    data_home : str or path-like, default=None
        The cache's parent folder; ``None`` is scikit-learn's
        (:func:`sklearn.datasets.get_data_home`). The archive lives in
        ``<data_home>/cifar10``.
    mirrors : list of str, default=None
        Base URLs tried in order; ``None`` is ``CIFAR10_MIRRORS``.
    checksums : dict, default=None
        ``{"cifar-10-python.tar.gz": sha256_hex}``; ``None`` is
        ``CIFAR10_SHA256``. An archive whose digest differs never enters the
        cache. Give your own only for your own copy of the archive.
    download_if_missing : bool, default=True
        If False, raise an :class:`OSError` when the archive is not cached.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (float32 array of shape (n_samples, 3072), pixels in [0, 1],
        each row in (C, H, W) order: use ``input_shape=(3, 32, 32)`` with
        :class:`~skdfa.ConvDFAClassifier`), ``target`` (int64 labels 0-9),
        ``feature_names``, ``target_names`` and ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    OSError
        If the archive is neither cached nor downloadable from any mirror.
        The message lists each mirror's failure and says where to put the
        archive by hand.

    See Also
    --------
    load_cifar10_archive : Read the archive from any path.
    fetch_mnist : MNIST, on the same machinery.

    Examples
    --------
    >>> from skdfa.datasets import fetch_cifar10
    >>> X, y = fetch_cifar10(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:3]  # doctest: +SKIP
    ((10000, 3072), dtype('float32'), array([3, 8, 8]))
    """
    if subset not in _BATCHES:
        raise ValueError(f"subset must be one of {sorted(_BATCHES)}, got {subset!r}.")
    folder = Path(get_data_home(data_home)) / "cifar10"
    _fetch_files(
        folder,
        [CIFAR10_ARCHIVE],
        CIFAR10_MIRRORS if mirrors is None else mirrors,
        CIFAR10_SHA256 if checksums is None else checksums,
        download_if_missing,
        "CIFAR-10",
    )
    path = folder / CIFAR10_ARCHIVE
    if not path.is_file():  # put there by hand, uncompressed
        path = folder / CIFAR10_ARCHIVE.removesuffix(".gz")
    X, y = load_cifar10_archive(path, subset=subset)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        feature_names=[
            f"{channel}_{row}_{col}"
            for channel in ("red", "green", "blue")
            for row in range(32)
            for col in range(32)
        ],
        target_names=list(CIFAR10_CLASSES),
        DESCR=(
            f"CIFAR-10: 32x32 colour images of 10 classes, subset={subset!r}, "
            f"{len(X)} samples, pixels scaled to [0, 1], rows in (C, H, W) order; "
            f"archive in {folder}."
        ),
    )
