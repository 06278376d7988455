"""IDX reading and Fashion-MNIST loading, on small IDX files written here."""

import gzip
import struct

import numpy as np
import pytest

from skdfa.datasets import load_fashion_mnist, load_idx, load_idx_folder

_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array):
    """The IDX encoding of ``array``, written independently of the reader."""
    array = np.asarray(array)
    header = bytes([0, 0, _CODES[array.dtype.str[1:]], array.ndim])
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, compress=False):
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_mnist_folder(folder, n_train=12, n_test=5, shape=(3, 4), seed=0):
    """A tiny MNIST-style folder; returns the arrays it holds."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, compress=True)
        arrays[prefix] = images, labels
    return arrays


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_round_trip(tmp_path, dtype, compress):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / "data-idx3", array, compress)
    loaded = load_idx(path)
    assert loaded.dtype == np.dtype(dtype).newbyteorder("=")
    assert loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


def test_load_idx_detects_gzip_from_content_not_name(tmp_path):
    array = np.arange(6, dtype=np.uint8)
    plain = write_idx(tmp_path / "plain.gz", array)
    packed = write_idx(tmp_path / "packed-ubyte", array, compress=True)
    np.testing.assert_array_equal(load_idx(plain), array)
    np.testing.assert_array_equal(load_idx(packed), array)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "not an IDX file"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "not an IDX file"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x07", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\x08", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x07\x08", "trailing bytes"),
    ],
)
def test_load_idx_rejects_malformed_files(tmp_path, raw, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_load_idx_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8)))
    path = tmp_path / "cut-idx2-ubyte.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match="corrupt gzip"):
        load_idx(path)


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "nothing-idx1-ubyte")


def test_load_idx_folder_scales_flattens_and_splits(tmp_path):
    arrays = write_mnist_folder(tmp_path)
    images, labels = arrays["train"]
    X, y = load_idx_folder(tmp_path)
    assert X.dtype == np.float32 and X.shape == (12, 12)
    np.testing.assert_allclose(X, images.reshape(12, -1) / 255.0, rtol=1e-6)
    assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64

    X_test, y_test = load_idx_folder(tmp_path, subset="test")
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])
    X_all, y_all = load_idx_folder(tmp_path, subset="all")
    np.testing.assert_array_equal(X_all, np.vstack([X, X_test]))
    np.testing.assert_array_equal(y_all, np.concatenate([y, y_test]))


def test_load_idx_folder_accepts_uncompressed_dotted_names(tmp_path):
    images = np.full((2, 2, 2), 255, np.uint8)
    write_idx(tmp_path / "train-images.idx3-ubyte", images)
    write_idx(tmp_path / "train-labels.idx1-ubyte", np.array([1, 2], np.uint8))
    X, y = load_idx_folder(tmp_path)
    np.testing.assert_array_equal(X, np.ones((2, 4), np.float32))
    np.testing.assert_array_equal(y, [1, 2])


def test_load_idx_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_idx_folder(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_idx_folder(tmp_path)
    with pytest.raises(ValueError, match="subset"):
        load_idx_folder(tmp_path, subset="validation")

    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="has 3 images but .* has 4 labels"):
        load_idx_folder(tmp_path)


def test_load_fashion_mnist_from_folder(tmp_path):
    arrays = write_mnist_folder(tmp_path)
    bunch = load_fashion_mnist(data_home=tmp_path, subset="test")
    assert bunch.data.shape == (5, 12) and bunch.data.dtype == np.float32
    np.testing.assert_array_equal(bunch.target, arrays["t10k"][1])
    assert bunch.target_names[0] == "T-shirt/top" and len(bunch.target_names) == 10
    X, y = load_fashion_mnist(data_home=tmp_path, return_X_y=True)
    np.testing.assert_array_equal(y, arrays["train"][1])


def test_load_fashion_mnist_environment_variable(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path)
    monkeypatch.setenv("SKDFA_FASHION_MNIST", str(tmp_path))
    X, _ = load_fashion_mnist(return_X_y=True)
    assert X.shape == (12, 12)


def test_load_fashion_mnist_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(data_home=tmp_path)
