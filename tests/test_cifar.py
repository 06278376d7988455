"""fetch_cifar10 against a local HTTP server serving a small generated archive
in the format of ``cifar-10-python.tar.gz``."""

import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from skdfa.datasets import fetch_cifar10, load_cifar10_archive
from skdfa.datasets._cifar import CIFAR10_ARCHIVE, CIFAR10_CLASSES, CIFAR10_SHA256

from .test_fetch import _dead_url, _sha256, serve  # noqa: F401 (fixture)

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _add(archive, name, payload):
    info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


def write_cifar_archive(path, n_per_batch=3, seed=0, batch=None):
    """A CIFAR-10-style archive; returns {batch name: (uint8 images, labels)}.

    ``batch(name, images, labels)`` may replace a batch's pickled dict.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    with tarfile.open(path, "w:gz") as archive:
        _add(archive, "batches.meta", pickle.dumps(
            {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, protocol=2))
        for name in BATCHES:
            images = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, size=n_per_batch).tolist()
            content = {b"batch_label": name.encode(), b"labels": labels, b"data": images,
                       b"filenames": [b"x.png"] * n_per_batch}
            if batch is not None:
                content = batch(name, images, labels)
            _add(archive, name, pickle.dumps(content, protocol=2))
            arrays[name] = images, np.array(labels)
    return arrays


@pytest.fixture
def mirror(tmp_path, serve):  # noqa: F811
    folder = tmp_path / "mirror"
    folder.mkdir()
    arrays = write_cifar_archive(folder / CIFAR10_ARCHIVE)
    checksums = {CIFAR10_ARCHIVE: _sha256(folder / CIFAR10_ARCHIVE)}
    return serve(folder), arrays, checksums


def test_fetch_downloads_verifies_and_loads_every_subset(tmp_path, mirror):
    server, arrays, checksums = mirror
    home = tmp_path / "home"
    data = fetch_cifar10(subset="all", data_home=home, mirrors=[server.url], checksums=checksums)
    images = np.concatenate([arrays[name][0] for name in BATCHES])
    labels = np.concatenate([arrays[name][1] for name in BATCHES])
    assert data.data.dtype == np.float32 and data.data.shape == (18, 3072)
    np.testing.assert_allclose(data.data, images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.target, labels)
    assert data.target_names == CIFAR10_CLASSES
    # Rows are (C, H, W): the first 1024 values are the red plane, row by row.
    assert data.feature_names[:2] == ["red_0_0", "red_0_1"]
    assert data.feature_names[1024] == "green_0_0"
    assert sorted(os.listdir(home / "cifar10")) == [CIFAR10_ARCHIVE]
    assert server.requests == ["/" + CIFAR10_ARCHIVE]

    # Later calls read the cache: no network needed.
    server.stop()
    X, y = fetch_cifar10(subset="test", data_home=home, download_if_missing=False,
                         return_X_y=True)
    np.testing.assert_array_equal(y, arrays["test_batch"][1])
    X, y = fetch_cifar10(data_home=home, download_if_missing=False, return_X_y=True)
    np.testing.assert_array_equal(y, labels[:15])


def test_corrupt_archive_is_rejected_and_named(tmp_path, mirror):
    server, arrays, checksums = mirror
    wrong = {CIFAR10_ARCHIVE: "0" * 64}
    with pytest.raises(OSError, match="checksum mismatch for cifar-10-python.tar.gz") as info:
        fetch_cifar10(data_home=tmp_path / "home", mirrors=[server.url], checksums=wrong)
    assert "Put the files cifar-10-python.tar.gz" in str(info.value)
    assert not (tmp_path / "home" / "cifar10").exists() or not os.listdir(
        tmp_path / "home" / "cifar10")


def test_falls_back_to_the_next_mirror(tmp_path, mirror):
    server, arrays, checksums = mirror
    X, y = fetch_cifar10(subset="test", data_home=tmp_path, checksums=checksums,
                         mirrors=[_dead_url(), server.url], return_X_y=True)
    np.testing.assert_array_equal(y, arrays["test_batch"][1])


def test_published_checksum_and_offline_errors(tmp_path):
    assert set(CIFAR10_SHA256) == {CIFAR10_ARCHIVE}
    assert len(CIFAR10_SHA256[CIFAR10_ARCHIVE]) == 64
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_cifar10(data_home=tmp_path, download_if_missing=False)
    with pytest.raises(OSError, match="could not download cifar-10-python.tar.gz of CIFAR-10"):
        fetch_cifar10(data_home=tmp_path, mirrors=[_dead_url()])
    with pytest.raises(ValueError, match="subset must be one of"):
        fetch_cifar10(data_home=tmp_path, subset="valid")


def test_archive_put_by_hand_uncompressed(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    arrays = write_cifar_archive(tmp_path / "packed.tar.gz")
    (folder / "cifar-10-python.tar").write_bytes(gzip.decompress((tmp_path / "packed.tar.gz").read_bytes()))
    X, y = fetch_cifar10(subset="test", data_home=tmp_path, mirrors=[_dead_url()], return_X_y=True)
    np.testing.assert_array_equal(y, arrays["test_batch"][1])


def test_a_batch_that_is_not_arrays_is_refused_unexecuted(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.remove, (str(tmp_path / "canary"),))

    (tmp_path / "canary").write_text("still here")
    write_cifar_archive(tmp_path / "evil.tar.gz",
                        batch=lambda name, images, labels: {b"data": Payload()})
    with pytest.raises(pickle.UnpicklingError, match="asks for posix.remove|asks for os.remove"):
        load_cifar10_archive(tmp_path / "evil.tar.gz")
    assert (tmp_path / "canary").exists()


def test_not_a_cifar_archive(tmp_path):
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as archive:
        _add(archive, "data_batch_1", b"")
    with pytest.raises(ValueError, match="has no data_batch_2.*not CIFAR-10's python archive"):
        load_cifar10_archive(tmp_path / "other.tar.gz")
    write_cifar_archive(tmp_path / "bad.tar.gz", batch=lambda name, images, labels: {
        b"data": images[:, :100], b"labels": labels})
    with pytest.raises(ValueError, match=r"expected \(n, 3072\) images"):
        load_cifar10_archive(tmp_path / "bad.tar.gz", subset="test")
