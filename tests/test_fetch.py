"""MNIST and Fashion-MNIST fetchers against a real HTTP server on 127.0.0.1.

The server (the standard library's ``http.server`` in a thread) serves small
IDX files written here; their SHA-256 reach the fetchers through the
documented ``checksums`` parameter, so the real download code runs.
"""

import functools
import hashlib
import http.server
import socket
import threading
import time

import numpy as np
import pytest

from skdfa.datasets import fetch_fashion_mnist, fetch_mnist
from skdfa.datasets._fetch import FASHION_MNIST_SHA256, MNIST_SHA256

from .test_datasets import write_mnist_folder


class _Server:
    """A folder served over HTTP on 127.0.0.1; ``requests`` lists the paths asked for.

    ``send(wfile, body)``, if given, writes each file's body after the headers
    (to cut it short or slow it down).
    """

    def __init__(self, folder, send=None):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if send is None:
                    return super().do_GET()
                body = (folder / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                send(self.wfile, body)

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        )
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def serve():
    servers = []

    def start(folder, send=None):
        servers.append(_Server(folder, send))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mirror_folder(folder, seed=0):
    """Tiny MNIST files in ``folder``: their arrays and SHA-256 by name."""
    folder.mkdir()
    arrays = write_mnist_folder(folder, n_train=12, n_test=5, shape=(3, 4), seed=seed)
    return arrays, {p.name: _sha256(p) for p in folder.iterdir()}


@pytest.fixture
def mirror(tmp_path, serve):
    """A served folder of tiny MNIST files, their arrays and checksums."""
    arrays, checksums = _mirror_folder(tmp_path / "mirror")
    return serve(tmp_path / "mirror"), arrays, checksums


def _dead_url():
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _cache_files(home):
    return sorted(p.name for p in (home / "mnist").iterdir()) if (home / "mnist").exists() else []


def test_fetch_downloads_verifies_and_loads(tmp_path, mirror):
    server, arrays, checksums = mirror
    home = tmp_path / "home"
    data = fetch_mnist(subset="all", data_home=home, mirrors=[server.url], checksums=checksums)
    images = np.concatenate([arrays["train"][0], arrays["t10k"][0]]).reshape(17, -1)
    labels = np.concatenate([arrays["train"][1], arrays["t10k"][1]])
    np.testing.assert_allclose(data.data, images / 255.0, rtol=1e-6)
    assert data.data.dtype == np.float32
    np.testing.assert_array_equal(data.target, labels)
    assert data.feature_names == [f"pixel{i}" for i in range(1, 13)]
    assert data.target_names == [str(d) for d in range(10)]
    assert "MNIST" in data.DESCR
    # The cache holds exactly the four verified files, nothing temporary.
    assert _cache_files(home) == sorted(checksums)
    for name, digest in checksums.items():
        assert _sha256(home / "mnist" / name) == digest


def test_fetch_subset_downloads_only_its_files(tmp_path, mirror):
    server, arrays, checksums = mirror
    X, y = fetch_mnist(subset="test", data_home=tmp_path, mirrors=[server.url],
                       checksums=checksums, return_X_y=True)
    np.testing.assert_array_equal(y, arrays["t10k"][1])
    assert sorted(server.requests) == ["/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]
    assert _cache_files(tmp_path) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_second_call_needs_no_network(tmp_path, mirror):
    server, arrays, checksums = mirror
    first = fetch_mnist(data_home=tmp_path, mirrors=[server.url], checksums=checksums)
    n_requests = len(server.requests)
    assert n_requests == 2
    server.stop()
    # The server is gone and the default mirrors are unreachable here: only
    # the cache can answer.
    second = fetch_mnist(data_home=tmp_path, download_if_missing=False)
    np.testing.assert_array_equal(first.data, second.data)
    np.testing.assert_array_equal(second.target, arrays["train"][1])
    assert len(server.requests) == n_requests


def test_mirror_fallback_dead_then_missing_then_good(tmp_path, mirror, serve):
    server, arrays, checksums = mirror
    empty = tmp_path / "empty"
    empty.mkdir()
    not_found = serve(empty)  # answers 404 for every file
    X, y = fetch_mnist(data_home=tmp_path / "home", checksums=checksums, return_X_y=True,
                       mirrors=[_dead_url(), not_found.url, server.url])
    np.testing.assert_array_equal(y, arrays["train"][1])
    assert len(not_found.requests) == 2  # asked, and moved on for each file


def test_corrupt_file_is_rejected_and_named(tmp_path, serve):
    folder = tmp_path / "mirror"
    _, checksums = _mirror_folder(folder)
    corrupt = folder / "train-labels-idx1-ubyte.gz"
    raw = corrupt.read_bytes()
    corrupt.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    server = serve(folder)
    home = tmp_path / "home"
    with pytest.raises(OSError) as info:
        fetch_mnist(data_home=home, mirrors=[server.url], checksums=checksums)
    message = str(info.value)
    assert "checksum mismatch for train-labels-idx1-ubyte.gz" in message
    assert server.url + "train-labels-idx1-ubyte.gz" in message
    assert checksums["train-labels-idx1-ubyte.gz"] in message
    # The good file stays, the corrupt one never entered the cache.
    assert _cache_files(home) == ["train-images-idx3-ubyte.gz"]


def test_corrupt_mirror_falls_back_to_a_good_one(tmp_path, mirror, serve):
    server, arrays, checksums = mirror
    _mirror_folder(tmp_path / "bad", seed=1)  # same names, other bytes
    bad_server = serve(tmp_path / "bad")
    X, y = fetch_mnist(data_home=tmp_path, mirrors=[bad_server.url, server.url],
                       checksums=checksums, return_X_y=True)
    np.testing.assert_array_equal(y, arrays["train"][1])


def test_dead_server_says_where_to_put_the_files(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(OSError) as info:
        fetch_mnist(data_home=home, mirrors=[_dead_url()], checksums=MNIST_SHA256)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz of MNIST" in message
    assert str(home / "mnist") in message
    assert "Put the files" in message
    assert _cache_files(home) == []  # no temporary file left


def test_truncated_download_leaves_nothing_behind(tmp_path, serve):
    _, checksums = _mirror_folder(tmp_path / "mirror")

    def send_half(wfile, body):
        wfile.write(body[: len(body) // 2])  # then the connection closes

    server = serve(tmp_path / "mirror", send_half)
    with pytest.raises(OSError, match=r"download truncated \(\d+ of \d+ bytes\)"):
        fetch_mnist(data_home=tmp_path / "home", checksums=checksums, mirrors=[server.url])
    assert _cache_files(tmp_path / "home") == []


def test_slow_download_shows_progress(tmp_path, serve, capsys):
    _, checksums = _mirror_folder(tmp_path / "mirror")

    def send_slowly(wfile, body):
        wfile.write(body[:10])
        wfile.flush()
        time.sleep(1.2)  # past the one second after which progress shows
        wfile.write(body[10:])

    server = serve(tmp_path / "mirror", send_slowly)
    fetch_mnist(subset="test", data_home=tmp_path / "home", checksums=checksums,
                mirrors=[server.url])
    err = capsys.readouterr().err
    assert "downloading t10k-images-idx3-ubyte.gz: 100%" in err
    assert "downloading t10k-labels-idx1-ubyte.gz: 100%" in err


def test_download_if_missing_false(tmp_path):
    with pytest.raises(OSError, match="download_if_missing=False. Put the files"):
        fetch_mnist(data_home=tmp_path, download_if_missing=False)


def test_files_put_by_hand_are_used(tmp_path):
    """The offline route the error message gives: files copied into the cache."""
    (tmp_path / "mnist").mkdir()
    arrays = write_mnist_folder(tmp_path / "mnist")
    X, y = fetch_mnist(subset="test", data_home=tmp_path, mirrors=[_dead_url()], return_X_y=True)
    np.testing.assert_array_equal(y, arrays["t10k"][1])


def test_fashion_mnist_has_its_own_cache_and_classes(tmp_path, mirror):
    server, arrays, checksums = mirror
    data = fetch_fashion_mnist(data_home=tmp_path, mirrors=server.url, checksums=checksums)
    assert (tmp_path / "fashion_mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert not (tmp_path / "mnist").exists()
    assert data.target_names[0] == "T-shirt/top"
    assert "Fashion-MNIST" in data.DESCR


def test_published_checksum_tables_are_complete():
    names = {f"{p}-{k}" for p in ("train", "t10k")
             for k in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz")}
    for table in (MNIST_SHA256, FASHION_MNIST_SHA256):
        assert set(table) == names
        assert all(len(d) == 64 and int(d, 16) >= 0 for d in table.values())


@pytest.mark.parametrize("kwargs, message", [
    ({"subset": "validation"}, "subset must be one of"),
    ({"mirrors": []}, "at least one base URL"),
    ({"checksums": {}}, "no SHA-256 for train-images-idx3-ubyte.gz"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fetch_mnist(data_home=tmp_path, **kwargs)
