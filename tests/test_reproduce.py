"""``skdfa reproduce nokland2016`` on tiny IDX data written here."""

import csv
import json
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skdfa import DFAClassifier
from skdfa._cli import _progress, _reproduce
from skdfa._cli import main

from .test_datasets import write_idx

TINY = ["--epochs", "2", "--n-train", "300"]


@pytest.fixture(scope="module")
def digits_idx(tmp_path_factory):
    """The digits as an MNIST-style folder: 8x8 uint8 images, 1400 train / 397 test."""
    folder = tmp_path_factory.mktemp("digits-idx")
    X, y = load_digits(return_X_y=True)
    images = (X.reshape(-1, 8, 8) * 15).astype(np.uint8)
    for prefix, part in [("train", slice(0, 1400)), ("t10k", slice(1400, None))]:
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[part], compress=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y[part].astype(np.uint8),
                  compress=True)
    return folder


def _table_rows(stdout):
    """``{row title: [(ours, paper), ...]}`` parsed from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"(\S.*?)\s{2,}((?:\s*[\d.]+ \(\s*[\d.?-]+\))+)$", line)
        if match:
            rows[match.group(1)] = re.findall(r"([\d.]+) \(\s*([\d.?-]+)\)", match.group(2))
    return rows


def test_tiny_table_csv_and_json(digits_idx, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["reproduce", "nokland2016", "--data", str(digits_idx), *TINY,
                   "--rows", "1x800,1x800-logistic", "--rules", "dfa,bp", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert status == 0
    rows = _table_rows(stdout)
    # The rows and columns asked for, in the order asked.
    assert list(rows) == ["1x800 tanh", "1x800 logistic"]
    assert all(len(cells) == 2 for cells in rows.values())
    header = next(line for line in stdout.splitlines() if line.startswith("test error"))
    assert header.split()[-2:] == ["DFA", "BP"]
    # The paper's numbers beside ours: unverified ones marked, missing ones "-".
    assert rows["1x800 tanh"][0][1] == "1.68?" and rows["1x800 tanh"][1][1] == "1.59?"
    assert rows["1x800 logistic"][0][1] == "-"
    assert "the paper's numbers are for MNIST" in stdout
    assert len(re.findall(r"^\[\d/4\] ", stdout, flags=re.M)) == 4  # progress per cell

    with open(out / "nokland2016.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert sorted((r["row"], r["rule"]) for r in records) == sorted(
        [("1x800", "dfa"), ("1x800", "bp"), ("1x800-logistic", "dfa"), ("1x800-logistic", "bp")]
    )
    for r in records:
        assert (r["epochs"], r["n_train"], r["n_test"], r["seed"]) == ("2", "300", "397", "0")
        assert float(r["fit_seconds"]) > 0
        printed = rows[_reproduce.ROW_TITLES[r["row"]]][("dfa", "bp").index(r["rule"])][0]
        assert printed == f"{float(r['test_error']):.2f}"
    cells = json.loads((out / "nokland2016.json").read_text())
    assert len(cells) == 4
    assert all(len(c["loss_curve"]) == 2 and c["settings"]["solver"] == "rmsprop" for c in cells)
    assert (out / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_cell_matches_the_documented_recipe(digits_idx, tmp_path, capsys):
    """A cell's test error is that of a DFAClassifier built by hand from the
    recipe the docs state (RMSprop 1e-4, rho 0.99, batch 64, sigmoid outputs,
    zero start for DFA, feedback +-1/sqrt(width), dropout 0.1/0.5)."""
    out = tmp_path / "out"
    assert main(["reproduce", "nokland2016", "--data", str(digits_idx), *TINY, "--seed", "3",
                 "--rows", "2x800-dropout", "--rules", "dfa", "--out", str(out),
                 "--no-plots", "--quiet"]) == 0
    capsys.readouterr()
    (cell,) = json.loads((out / "nokland2016.json").read_text())
    X, y = load_digits(return_X_y=True)
    X = ((X * 15).astype(np.uint8) / 255).astype(np.float32)
    est = DFAClassifier(
        hidden_layer_sizes=(800, 800), activation="tanh", rule="dfa", solver="rmsprop",
        learning_rate_init=1e-4, rho=0.99, epsilon=1e-8, alpha=0.0, batch_size=64,
        max_iter=2, tol=0.0, n_iter_no_change=2, output_activation="sigmoid",
        weight_init="zeros", feedback_distribution="uniform", feedback_scale="auto",
        dropout=(0.1, 0.5), random_state=3,
    ).fit(X[:300], y[:300])
    # The loss curve is sensitive to every setting (the test error, a count
    # of 397 samples, is not).
    assert cell["loss_curve"] == pytest.approx(est.loss_curve_, rel=1e-6)
    assert cell["test_error"] == pytest.approx(100 * (1 - est.score(X[1400:], y[1400:])))
    assert cell["weight_init"] == "zeros" and cell["dropout"] == [0.1, 0.5]


def test_cells_run_under_a_joblib_backend(digits_idx, tmp_path, capsys):
    """--n-jobs hands the cells to joblib: under parallel_config (as with
    backend="dask") they run there, with the results of a sequential run."""
    from joblib import parallel_config

    argv = ["reproduce", "nokland2016", "--data", str(digits_idx), "--epochs", "1",
            "--n-train", "200", "--rows", "1x800-logistic", "--rules", "dfa,fa",
            "--no-plots", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "seq")]) == 0
    with parallel_config(backend="threading"):
        assert main([*argv, "--n-jobs", "2", "--out", str(tmp_path / "par")]) == 0
    capsys.readouterr()

    def curves(folder):
        cells = json.loads((folder / "nokland2016.json").read_text())
        return {(c["row"], c["rule"]): c["loss_curve"] for c in cells}

    parallel, sequential = curves(tmp_path / "par"), curves(tmp_path / "seq")
    assert parallel.keys() == sequential.keys()
    for cell, curve in sequential.items():
        assert parallel[cell] == pytest.approx(curve)


def test_bp_keeps_a_random_start():
    assert _reproduce.make_estimator("1x800", "bp").weight_init == "glorot"
    assert _reproduce.make_estimator("1x800-logistic", "fa").weight_init == "zeros"


def test_ctrl_c_keeps_finished_cells(digits_idx, tmp_path, capsys, monkeypatch):
    train_cell = _reproduce._train_cell

    def interrupted_on_second_cell(row, rule, *args, **kwargs):
        if rule == "bp":
            raise KeyboardInterrupt
        return train_cell(row, rule, *args, **kwargs)

    monkeypatch.setattr(_reproduce, "_train_cell", interrupted_on_second_cell)
    out = tmp_path / "out"
    status = main(["reproduce", "nokland2016", "--data", str(digits_idx), *TINY,
                   "--rows", "1x800", "--rules", "dfa,bp", "--out", str(out), "--no-plots"])
    captured = capsys.readouterr()
    assert status == 130
    assert "interrupted: 1 of 2 cells finished" in captured.out
    (dfa_ours, dfa_paper), bp = _table_rows(captured.out)["1x800 tanh"]
    assert float(dfa_ours) >= 0 and dfa_paper == "1.68?"
    assert bp == ("...", "1.59?")  # the unfinished cell
    with open(out / "nokland2016.csv", newline="") as f:
        assert [(r["row"], r["rule"]) for r in csv.DictReader(f)] == [("1x800", "dfa")]


@pytest.mark.parametrize("argv, message", [
    (["--rows", "1x900"], "unknown row(s) 1x900"),
    (["--rules", "dfa,drtp"], "unknown rule(s) drtp"),
    (["--epochs", "0"], "--epochs"),
])
def test_usage_errors(argv, message, capsys):
    assert main(["reproduce", "nokland2016", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_missing_data_is_one_line(tmp_path, capsys):
    assert main(["reproduce", "nokland2016", "--data", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err


def test_table_before_any_cell_marks_the_papers_numbers():
    lines = _reproduce.format_table([], ["100x240", "2x800-dropout"], _reproduce.RULES).splitlines()
    assert lines[0].split()[-3:] == ["BP", "FA", "DFA"]
    assert re.findall(r"\((.*?)\)", lines[3]) == [" fail?", " fail?", " 3.92?"]
    assert re.findall(r"\((.*?)\)", lines[4]) == ["     -", "     -", "  1.45"]
    assert lines[3].count("...") == 3


def test_offline_mnist_is_one_line_saying_where_to_put_the_files(tmp_path, capsys, monkeypatch):
    from skdfa.datasets import _fetch

    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    # Nothing listens there: the state of a machine without network.
    monkeypatch.setattr(_fetch, "MNIST_MIRRORS", ("http://127.0.0.1:9/",))
    assert main(["reproduce", "nokland2016", "--data", "mnist"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "could not download train-images-idx3-ubyte.gz of MNIST" in err
    assert f"in {tmp_path / 'mnist'}" in err


def test_bad_out_is_one_line_before_any_cell(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["reproduce", "nokland2016", "--out", str(tmp_path / "file")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no data loaded, nothing trained
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("skdfa: error: --out ")


# -- resume, progress, data recognition, devices, clusters (issue 20) -------------

RESUME = ["--epochs", "5", "--n-train", "200", "--rows", "1x800-logistic", "--rules", "dfa",
          "--checkpoint-every", "2", "--no-plots"]


def _spy_fitted(monkeypatch):
    """The fitted estimator of every cell, in the order the cells finish."""
    fitted = []
    errors = _reproduce._errors

    def spy(est, *data):
        fitted.append(est)
        return errors(est, *data)

    monkeypatch.setattr(_reproduce, "_errors", spy)
    return fitted


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_rerun_continues_an_interrupted_cell_from_its_checkpoint(digits_idx, tmp_path, capsys,
                                                                 monkeypatch, device):
    # On torch, the epochs' row orders are drawn on the device from the
    # estimator's stream, which the checkpoint carries.
    if device != "numpy":
        pytest.importorskip("torch")
    fitted = _spy_fitted(monkeypatch)
    argv = ["reproduce", "nokland2016", "--data", str(digits_idx), *RESUME, "--device", device]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()

    # Ctrl-C after epoch 3: the checkpoint of epoch 2 is on disk.
    update = _progress.EpochProgress.update

    def interrupted_after_epoch_3(self, epoch, loss):
        update(self, epoch, loss)
        if epoch == 3:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_progress.EpochProgress, "update", interrupted_after_epoch_3)
        assert main([*argv, "--out", str(tmp_path / "resumed")]) == 130
    captured = capsys.readouterr()
    assert "interrupted: 0 of 1 cells finished" in captured.out
    assert "epoch 3/5" in captured.out and "epoch 4/5" not in captured.out
    checkpoint = tmp_path / "resumed" / "checkpoints" / "1x800-logistic-dfa-seed0.joblib"
    assert checkpoint.is_file()

    assert main([*argv, "--out", str(tmp_path / "resumed")]) == 0
    out = capsys.readouterr().out
    assert f"resuming at epoch 2 from {checkpoint}" in out
    assert "epoch 3/5" in out and "epoch 2/5" not in out
    assert not checkpoint.exists()  # the finished cell needs none
    whole, resumed = fitted[0], fitted[-1]
    # The model of one uninterrupted fit, bit for bit.
    for a, b in zip(whole.coefs_ + whole.intercepts_, resumed.coefs_ + resumed.intercepts_):
        assert type(a).__module__.split(".")[0] == ("numpy" if device == "numpy" else "torch")
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed.loss_curve_ == whole.loss_curve_ and resumed.t_ == whole.t_
    (cell,) = json.loads((tmp_path / "resumed" / "nokland2016.json").read_text())
    assert cell["resumed_at_epoch"] == 2 and len(cell["loss_curve"]) == 5

    # A third run finds the cell finished and trains nothing.
    assert main([*argv, "--out", str(tmp_path / "resumed")]) == 0
    out = capsys.readouterr().out
    assert "(an earlier run)" in out and "epoch 1/5" not in out
    assert len(fitted) == 2


def test_checkpoint_of_other_settings_is_not_continued(digits_idx, tmp_path, capsys):
    argv = ["reproduce", "nokland2016", "--data", str(digits_idx), *RESUME,
            "--out", str(tmp_path)]
    # A checkpoint left by a run of 3 epochs (another cell identity).
    est = _reproduce.make_estimator("1x800-logistic", "dfa", epochs=3)
    identity = _reproduce.cell_identity("1x800-logistic", "dfa", epochs=3, seed=0, n_train=200,
                                        data=f"IDX files in {digits_idx}", device="numpy")
    path = _reproduce.checkpoint_path(tmp_path, "1x800-logistic", "dfa", 0)
    _reproduce.save_checkpoint(path, identity, est, 1.0)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "resuming" not in out and "epoch 1/5" in out


def test_finished_cells_of_other_settings_stay_in_the_results(digits_idx, tmp_path, capsys):
    base = ["reproduce", "nokland2016", "--data", str(digits_idx), "--n-train", "200",
            "--rows", "1x800-logistic", "--rules", "dfa", "--no-plots", "--quiet",
            "--out", str(tmp_path)]
    assert main([*base, "--epochs", "1"]) == 0
    assert main([*base, "--epochs", "2"]) == 0
    capsys.readouterr()
    cells = json.loads((tmp_path / "nokland2016.json").read_text())
    assert sorted(c["epochs"] for c in cells) == [1, 2]


def test_progress_lines_give_epoch_loss_and_time_left(digits_idx, capsys):
    assert main(["reproduce", "nokland2016", "--data", str(digits_idx), "--epochs", "3",
                 "--n-train", "100", "--rows", "1x800", "--rules", "bp"]) == 0
    lines = re.findall(r"^  1x800 tanh, BP: epoch (\d)/3, loss ([\d.]+), [\d.]+ s/epoch, "
                       r"(\d+ s) left$", capsys.readouterr().out, flags=re.M)
    assert [epoch for epoch, _, _ in lines] == ["1", "2", "3"]
    assert lines[-1][2] == "0 s"
    assert main(["reproduce", "nokland2016", "--data", str(digits_idx), "--epochs", "2",
                 "--n-train", "100", "--rows", "1x800", "--rules", "bp", "--quiet"]) == 0
    assert "epoch 1/" not in capsys.readouterr().out


def test_mnist_files_are_recognised_by_their_checksums(digits_idx, tmp_path, capsys,
                                                        monkeypatch):
    import hashlib

    from skdfa.datasets import _fetch

    argv = ["reproduce", "nokland2016", "--data", str(digits_idx), "--epochs", "1",
            "--n-train", "100", "--rows", "1x800", "--rules", "bp", "--quiet"]
    checksums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in digits_idx.iterdir()}
    # The folder's files under MNIST's published checksums: it is MNIST.
    monkeypatch.setattr(_fetch, "MNIST_SHA256", checksums)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"Table 1, on MNIST (IDX files in {digits_idx}):" in out
    assert "the paper's numbers are for MNIST" not in out
    # One byte off: not MNIST any more, and said so.
    monkeypatch.setattr(_fetch, "MNIST_SHA256",
                        {**checksums, "t10k-labels-idx1-ubyte.gz": "0" * 64})
    monkeypatch.setattr(_fetch, "FASHION_MNIST_SHA256", checksums)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"on Fashion-MNIST (IDX files in {digits_idx})" in out
    assert "the paper's numbers are for MNIST; this run is on Fashion-MNIST" in out


def test_recompressed_and_uncompressed_files_are_recognised_by_their_content(
        digits_idx, tmp_path, monkeypatch):
    # Debian's Fashion-MNIST: the published data under another gzip header,
    # so the .gz files' own hashes are not the published ones.
    import gzip
    import hashlib

    from skdfa._cli._common import identify_idx_folder
    from skdfa.datasets import _fetch

    contents = {p.name.removesuffix(".gz"): gzip.decompress(p.read_bytes())
                for p in digits_idx.iterdir()}
    digests = {name: hashlib.sha256(raw).hexdigest() for name, raw in contents.items()}
    recompressed, plain = tmp_path / "recompressed", tmp_path / "plain"
    for folder in (recompressed, plain):
        folder.mkdir()
    for name, raw in contents.items():
        (recompressed / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=1, mtime=1))
        (plain / name).write_bytes(raw)
    for name in contents:
        assert (hashlib.sha256((recompressed / f"{name}.gz").read_bytes()).hexdigest()
                != hashlib.sha256((digits_idx / f"{name}.gz").read_bytes()).hexdigest())
    assert identify_idx_folder(recompressed) is None
    monkeypatch.setattr(_fetch, "FASHION_MNIST_IDX_SHA256", digests)
    assert identify_idx_folder(recompressed) == "Fashion-MNIST"
    assert identify_idx_folder(plain) == "Fashion-MNIST"
    assert identify_idx_folder(digits_idx) == "Fashion-MNIST"
    # One changed byte of content is another data set.
    raw = bytearray(contents["t10k-images-idx3-ubyte"])
    raw[-1] ^= 1
    (recompressed / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    assert identify_idx_folder(recompressed) is None
    # A file that is not gzip data under a .gz name is not the data set either.
    (plain / "t10k-images-idx3-ubyte.gz").write_bytes(contents["t10k-images-idx3-ubyte"])
    assert identify_idx_folder(plain) is None


def test_torch_device_trains_the_numpy_model(digits_idx, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    from skdfa._array_ops import ArrayOps, TorchOps

    # torch draws its epochs' row orders on the device (equal to numpy's in
    # distribution only): numpy's orders here, for the same model.
    monkeypatch.setattr(TorchOps, "shuffled_rows", ArrayOps.shuffled_rows)
    argv = ["reproduce", "nokland2016", "--data", str(digits_idx), "--epochs", "2",
            "--n-train", "200", "--rows", "1x800", "--rules", "dfa,bp", "--quiet",
            "--no-plots"]
    assert main([*argv, "--out", str(tmp_path / "numpy")]) == 0
    assert main([*argv, "--out", str(tmp_path / "cpu"), "--device", "cpu"]) == 0
    assert "on torch cpu" in capsys.readouterr().out

    def cells(name):
        return {c["rule"]: c for c in json.loads((tmp_path / name / "nokland2016.json")
                                                 .read_text())}

    on_numpy, on_torch = cells("numpy"), cells("cpu")
    for rule in ["dfa", "bp"]:
        assert on_torch[rule]["device"] == "cpu" and on_numpy[rule]["device"] == "numpy"
        # float32 sums in another order: equal to rounding.
        assert on_torch[rule]["loss_curve"] == pytest.approx(on_numpy[rule]["loss_curve"],
                                                             rel=1e-4)


def test_cells_run_on_a_dask_cluster_of_processes(digits_idx, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    argv = ["reproduce", "nokland2016", "--data", str(digits_idx), "--epochs", "1",
            "--n-train", "200", "--rows", "1x800-logistic", "--rules", "dfa,fa",
            "--no-plots", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "seq")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, parallel_config(backend="dask"):
        assert main([*argv, "--n-jobs", "2", "--out", str(tmp_path / "dask")]) == 0
        # The cells ran in the workers' processes.
        assert len(client.scheduler_info()["workers"]) == 2
    capsys.readouterr()

    def curves(folder):
        cells = json.loads((folder / "nokland2016.json").read_text())
        return {(c["row"], c["rule"]): c["loss_curve"] for c in cells}

    assert curves(tmp_path / "dask") == curves(tmp_path / "seq")
