"""Downloaders of MNIST and Fashion-MNIST, in the manner of scikit-learn's fetchers.

Each data set is four gzipped IDX files fetched from a list of mirrors tried
in order. A file enters the cache (``sklearn.datasets.get_data_home()``) only
after its SHA-256 matches the published one: it is written under a temporary
name in the cache folder and renamed when complete and verified, so an
interrupted or corrupt download leaves nothing behind.

Sources of the mirrors and checksums (read in the projects' own code):

- MNIST mirrors: ``https://ossci-datasets.s3.amazonaws.com/mnist/`` and
  ``http://yann.lecun.com/exdb/mnist/`` (torchvision's
  ``torchvision/datasets/mnist.py``, ``MNIST.mirrors``),
  ``https://storage.googleapis.com/cvdf-datasets/mnist/`` (TensorFlow
  Datasets' ``image_classification/mnist.py``, "CVDF mirror of
  yann.lecun.com").
- MNIST SHA-256 and sizes: TensorFlow Datasets'
  ``url_checksums/mnist.txt``. torchvision publishes MD5s of the same file
  names; the sizes TFDS lists are the sizes of the files on every mirror.
- Fashion-MNIST mirror: ``http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/``
  (torchvision's ``FashionMNIST.mirrors`` and TFDS's ``FashionMNIST.URL``).
- Fashion-MNIST SHA-256 and sizes: TensorFlow Datasets'
  ``url_checksums/fashion_mnist.txt``.

No network is reachable where this module was written, so none of these
checksums was checked against a download here.

A folder is recognised as MNIST or Fashion-MNIST by the SHA-256 of its files'
decompressed IDX content (``MNIST_IDX_SHA256``, ``FASHION_MNIST_IDX_SHA256``),
so that other gzip wrappings of the same data count too. Debian's
``dataset-fashion-mnist`` package holds such files: their gzip headers lack
the file name (each file is 23 or 24 bytes smaller than the published one,
the length of that name) and carry another date, so their own hashes differ
from the published ones. The content digests were computed here from the
published MNIST files and from Debian's Fashion-MNIST files, whose content
is the published one: each file is exactly the published size less its gzip
header's file name, the IDX headers give 60000 and 10000 images of 28 x 28,
and the labels hold 6000 (training) and 1000 (test) images of each class.
"""

import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

from ._idx import FASHION_MNIST_CLASSES, _SUBSETS, load_idx_folder

_FILE_KINDS = ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz")
_CHUNK_BYTES = 1 << 16
_PROGRESS_AFTER_S = 1.0
_PROGRESS_EVERY_S = 0.5
DOWNLOAD_TIMEOUT_S = 60
"""Seconds without an answer from a mirror before the next one is tried."""

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Default MNIST mirrors, tried in order (torchvision's and TFDS's)."""

MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
"""Published SHA-256 of the MNIST files (TFDS ``url_checksums/mnist.txt``)."""

FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
"""Default Fashion-MNIST mirror (the one torchvision and TFDS use)."""

FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
"""Published SHA-256 of the Fashion-MNIST files (TFDS ``url_checksums/fashion_mnist.txt``)."""

# Labels first: a folder that is not the data set is told by its small files.
MNIST_IDX_SHA256 = {
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
}
"""SHA-256 of the MNIST files' decompressed IDX content (from the published files)."""

FASHION_MNIST_IDX_SHA256 = {
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
}
"""SHA-256 of the Fashion-MNIST files' decompressed IDX content (from Debian's
``dataset-fashion-mnist`` files; see the module's docstring)."""


def _file_names(subset):
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {sorted(_SUBSETS)}, got {subset!r}.")
    return [f"{prefix}-{kind}" for prefix in _SUBSETS[subset] for kind in _FILE_KINDS]


def _is_cached(folder, name):
    """The verified ``.gz`` file, or the same file uncompressed put there by hand."""
    return (folder / name).is_file() or (folder / name.removesuffix(".gz")).is_file()


def _show_progress(name, done, total, elapsed):
    size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
    percent = f" {100 * done / total:3.0f}%" if total else ""
    print(f"\rdownloading {name}:{percent} {size}, {elapsed:.0f} s", end="", file=sys.stderr)


def _download(url, target, sha256):
    """Download ``url`` to ``target`` if its SHA-256 is ``sha256``.

    Returns ``None`` on success, else why the mirror failed (a sentence).
    The bytes go to a temporary file beside ``target``, renamed only after
    the checksum matched; any failure or interruption deletes it.
    """
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.sha256()
    start = last_shown = time.monotonic()
    shown = False
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    total = int(response.headers.get("Content-Length") or 0)
                    done = 0
                    while chunk := response.read(_CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        now = time.monotonic()
                        if now - start > _PROGRESS_AFTER_S and now - last_shown > _PROGRESS_EVERY_S:
                            _show_progress(target.name, done, total, now - start)
                            shown, last_shown = True, now
                if total and done != total:  # the connection closed early
                    return f"{url}: download truncated ({done} of {total} bytes)"
            except (OSError, http.client.HTTPException) as exc:
                # URLError, HTTPError and timeouts are OSErrors; a connection
                # closed early raises IncompleteRead.
                reason = getattr(exc, "reason", None) or exc
                return f"{url}: download failed ({type(exc).__name__}: {reason})"
            finally:
                if shown:
                    print(file=sys.stderr)
        got = digest.hexdigest()
        if got != sha256:
            return (
                f"{url}: checksum mismatch for {target.name}: expected SHA-256 "
                f"{sha256}, got {got} ({done} bytes); the file was discarded"
            )
        os.replace(partial, target)
        partial = None
        return None
    finally:
        if partial is not None:
            Path(partial).unlink(missing_ok=True)


def _fetch_files(folder, names, mirrors, checksums, download_if_missing, title):
    """Make sure every file of ``names`` is in ``folder``, downloading what is missing."""
    missing = [name for name in names if not _is_cached(folder, name)]
    if not missing:
        return
    where = (
        f"Put the files {', '.join(missing)} (gzipped or not) in {folder}, or pass "
        "data_home= (the cache is <data_home>/" + folder.name + ")."
    )
    if not download_if_missing:
        raise OSError(f"{title} is not in {folder} and download_if_missing=False. {where}")
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    mirrors = list(mirrors)
    if not mirrors:
        raise ValueError("mirrors must list at least one base URL.")
    unknown = [name for name in missing if name not in checksums]
    if unknown:
        raise ValueError(f"no SHA-256 for {', '.join(unknown)} in checksums.")
    folder.mkdir(parents=True, exist_ok=True)
    for name in missing:
        failures = []
        for mirror in mirrors:
            url = mirror if mirror.endswith("/") else mirror + "/"
            failure = _download(url + name, folder / name, checksums[name].lower())
            if failure is None:
                break
            failures.append(failure)
        else:
            raise OSError(
                f"could not download {name} of {title} from any mirror: "
                + "; ".join(failures)
                + f". {where}"
            )


def _fetch(title, cache_name, default_mirrors, default_checksums, target_names, *,
           subset, data_home, mirrors, checksums, download_if_missing, return_X_y):
    names = _file_names(subset)
    folder = Path(get_data_home(data_home)) / cache_name
    _fetch_files(
        folder,
        names,
        default_mirrors if mirrors is None else mirrors,
        default_checksums if checksums is None else checksums,
        download_if_missing,
        title,
    )
    X, y = load_idx_folder(folder, subset=subset)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        feature_names=[f"pixel{i}" for i in range(1, X.shape[1] + 1)],
        target_names=list(target_names),
        DESCR=(
            f"{title}: 28x28 grey-scale images of 10 classes, subset={subset!r}, "
            f"{len(X)} samples, pixels scaled to [0, 1]; files in {folder}."
        ),
    )


_FETCH_PARAMETERS = """\
    Parameters
    ----------
    subset : {{"train", "test", "all"}}, default="train"
        The shipped training set (60000 samples), the test set (10000), or
        both with the training samples first. Only the files the subset needs
        are downloaded.
    data_home : str or path-like, default=None
        The cache's parent folder; ``None`` is scikit-learn's
        (:func:`sklearn.datasets.get_data_home`: ``~/scikit_learn_data`` or
        ``$SCIKIT_LEARN_DATA``). The files live in ``<data_home>/{cache}``.
    mirrors : list of str, default=None
        Base URLs tried in order for each file; ``None`` is ``{mirrors}``.
    checksums : dict, default=None
        SHA-256 (hex) of each file, by file name; ``None`` is the published
        ``{checksums}``. A file whose digest differs never enters the cache.
        Give your own only for your own copies of the files (the tests serve
        small generated files this way).
    download_if_missing : bool, default=True
        If False, raise an :class:`OSError` when the files are not cached
        instead of downloading them.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (float32 array of shape (n_samples, 784), pixels in [0, 1]),
        ``target`` (int64 labels 0-9), ``feature_names``, ``target_names``
        and ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    OSError
        If a file is neither cached nor downloadable from any mirror (no
        network, or every mirror failed or served a file with the wrong
        checksum). The message lists each mirror's failure and says where to
        put the files by hand.
"""


def fetch_mnist(
    *,
    subset="train",
    data_home=None,
    mirrors=None,
    checksums=None,
    download_if_missing=True,
    return_X_y=False,
):
    """Load MNIST (LeCun et al., 1998), downloading it on first use.

    The gzipped IDX files are downloaded from the first mirror that
    answers, checked against their published SHA-256 and cached under
    scikit-learn's data home; later calls read the cache and need no network.
    Downloads longer than a second show their progress on stderr.

    {parameters}

    See Also
    --------
    fetch_fashion_mnist : The same for Fashion-MNIST.
    load_idx_folder : Read MNIST-style IDX files from any folder.

    Examples
    --------
    >>> from skdfa.datasets import fetch_mnist
    >>> X, y = fetch_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:3]  # doctest: +SKIP
    ((10000, 784), dtype('float32'), array([7, 2, 1]))
    """
    return _fetch(
        "MNIST", "mnist", MNIST_MIRRORS, MNIST_SHA256, [str(d) for d in range(10)],
        subset=subset, data_home=data_home, mirrors=mirrors, checksums=checksums,
        download_if_missing=download_if_missing, return_X_y=return_X_y,
    )


def fetch_fashion_mnist(
    *,
    subset="train",
    data_home=None,
    mirrors=None,
    checksums=None,
    download_if_missing=True,
    return_X_y=False,
):
    """Load Fashion-MNIST (Xiao et al., 2017), downloading it on first use.

    Like :func:`fetch_mnist`, for Zalando's 28x28 clothing images. To read
    local files without any download (for example Debian's
    ``dataset-fashion-mnist`` package), use :func:`load_fashion_mnist`.

    {parameters}

    See Also
    --------
    fetch_mnist : The same for MNIST.
    load_fashion_mnist : Read Fashion-MNIST from local files.

    Examples
    --------
    >>> from skdfa.datasets import fetch_fashion_mnist
    >>> data = fetch_fashion_mnist(subset="test")  # doctest: +SKIP
    >>> data.data.shape, data.target_names[:2]  # doctest: +SKIP
    ((10000, 784), ['T-shirt/top', 'Trouser'])
    """
    return _fetch(
        "Fashion-MNIST", "fashion_mnist", FASHION_MNIST_MIRRORS, FASHION_MNIST_SHA256,
        FASHION_MNIST_CLASSES,
        subset=subset, data_home=data_home, mirrors=mirrors, checksums=checksums,
        download_if_missing=download_if_missing, return_X_y=return_X_y,
    )


fetch_mnist.__doc__ = fetch_mnist.__doc__.format(
    parameters=_FETCH_PARAMETERS.format(
        cache="mnist", mirrors="MNIST_MIRRORS", checksums="MNIST_SHA256"
    ).strip()
)
fetch_fashion_mnist.__doc__ = fetch_fashion_mnist.__doc__.format(
    parameters=_FETCH_PARAMETERS.format(
        cache="fashion_mnist", mirrors="FASHION_MNIST_MIRRORS",
        checksums="FASHION_MNIST_SHA256",
    ).strip()
)
