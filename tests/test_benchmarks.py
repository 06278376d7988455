"""Each script in ``benchmarks/`` runs end to end with a tiny setting.

The timings and memory figures of such runs mean nothing; what is checked
is that every script still runs against the current library and prints the
table it documents.
"""

import importlib.util
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(monkeypatch, capsys, script, *argv):
    """Run ``benchmarks/<script>`` as ``__main__`` with ``argv``; its stdout."""
    monkeypatch.setattr(sys, "argv", [script, *argv])
    try:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (0, None)
    return capsys.readouterr().out


def test_every_benchmark_is_covered():
    tested = {"bench_conv.py", "bench_custom_rules.py", "bench_memory.py", "bench_mlp.py",
              "bench_optimizer.py", "bench_rd.py", "bench_stacking.py", "biotorch_lenet_reference.py",
              "compare_biotorch.py", "conv_feedback_forms.py", "fingerprint_models.py"}
    assert {path.name for path in BENCHMARKS.glob("*.py")} == tested


def test_fingerprint_models_finds_a_changed_model(monkeypatch, capsys, tmp_path):
    path = str(tmp_path / "before.npz")
    out = _run(monkeypatch, capsys, "fingerprint_models.py", "save", path, "--only", "rd/fa/")
    assert re.search(r"^\d+ arrays saved", out, re.MULTILINE)
    out = _run(monkeypatch, capsys, "fingerprint_models.py", "compare", path, "--only", "rd/fa/")
    assert re.search(r"^(\d+) arrays compared, 0 differ$", out, re.MULTILINE)
    # One changed array is reported, and the run fails.
    arrays = dict(np.load(path))
    arrays["rd/fa/sgd/intercepts_[0]"][0] += 1e-12
    np.savez(path, **arrays)
    monkeypatch.setattr(sys, "argv", ["fingerprint_models.py", "compare", path, "--only", "rd/fa/"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(BENCHMARKS / "fingerprint_models.py"), run_name="__main__")
    assert exc.value.code == 1
    assert "rd/fa/sgd/intercepts_[0]: differs" in capsys.readouterr().out


def test_bench_memory(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "bench_memory.py", "--n-samples", "300",
               "--n-features", "20", "--hidden", "8", "--max-iter", "1")
    assert "X: (300, 20) float32" in out
    assert re.search(r"^fit: .*extra peak .*\(bound", out, re.MULTILINE)
    assert re.search(r"^predict: .*extra peak", out, re.MULTILINE)


def test_bench_conv(monkeypatch, capsys):
    pytest.importorskip("torch")
    out = _run(monkeypatch, capsys, "bench_conv.py", "--data", "synthetic",
               "--n-samples", "128", "--repeats", "1")
    assert out.count("LeNet, DFA, synthetic, 128 samples, batch 64") == 1
    rows = dict(re.findall(r"^(skdfa-torch|skdfa-numpy|torch-loop|biotorch)\s+([\d.]+)\s", out,
                           re.MULTILINE))
    assert {"skdfa-torch", "skdfa-numpy", "torch-loop"} <= set(rows)
    assert "skdfa numpy / skdfa torch: " in out


def test_compare_biotorch_without_biotorch(monkeypatch, capsys):
    # The comparison itself needs biotorch, whose dependencies the test extra
    # cannot carry (torchvision, jupyter, tensorboard): its measured result is
    # in the conv docs. Here: the script says what it needs, and exits 2.
    for name in ("biotorch", "biotorch.layers", "biotorch.layers.fa"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.setattr(sys, "argv", ["compare_biotorch.py"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(BENCHMARKS / "compare_biotorch.py"), run_name="__main__")
    assert exc.value.code == 2
    assert "pip install --no-deps biotorch==0.0.16" in capsys.readouterr().out


def test_biotorch_lenet_reference_without_biotorch(monkeypatch, capsys):
    # Training needs biotorch (the side-by-side table in the conv docs).
    monkeypatch.setitem(sys.modules, "biotorch", None)
    monkeypatch.setattr(sys, "argv", ["biotorch_lenet_reference.py", "--learning-rate", "1e-3",
                                      "--out", "unused"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(BENCHMARKS / "biotorch_lenet_reference.py"), run_name="__main__")
    assert exc.value.code == 2
    assert "pip install --no-deps biotorch==0.0.16" in capsys.readouterr().out


def test_biotorch_lenet_reference_feeds_the_images_skdfa_trains_on():
    # The reference loop resizes with torch's interpolate, skdfa's command
    # with its own bilinear matrices; both round to 8 bits and normalise.
    pytest.importorskip("torch")
    from skdfa._cli import _biotorch
    from skdfa.datasets import load_idx

    reference = runpy.run_path(str(BENCHMARKS / "biotorch_lenet_reference.py"))
    folder = Path(__file__).parent / "data" / "fashion-mnist-subset"
    X_train, y_train, X_test, y_test = reference["loop_data"]("fashion-mnist", folder)
    raw = load_idx(folder / "train-images-idx3-ubyte.gz")
    assert X_train.shape == (len(raw), 1, 32, 32) and len(X_test) == len(y_test)
    np.testing.assert_array_equal(
        y_train.numpy(), load_idx(folder / "train-labels-idx1-ubyte.gz"))
    skdfa_images = _biotorch.prepare(raw.reshape(len(raw), -1) / 255, "Fashion-MNIST")
    np.testing.assert_allclose(X_train.numpy().reshape(len(raw), -1), skdfa_images, atol=1e-6)


def test_bench_mlp(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "bench_mlp.py", "--quick", "--data", "synthetic",
               "--epochs", "1", "--hidden", "8", "--quiet")
    assert out.startswith("Benchmark on SYNTHETIC data")
    assert "784-8-10" in out and "Targets:" in out


def test_bench_optimizer(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "bench_optimizer.py", "--hidden", "300", "--repeats", "2")
    assert out.startswith("784-300-10 float32: 238510 parameters, block 32768 elements")
    # numba's loop where it is installed, numpy's blocked and whole-array ufuncs.
    ways = 3 if importlib.util.find_spec("numba") else 2
    rows = re.findall(
        r"^(adam|sgd|rmsprop)" + r"\s+[\d.]+" * ways + r"\s+[\d.]+x" * (ways - 1) + r"\s+(\w+)$",
        out, re.MULTILINE,
    )
    # The 784 x 300 weights span several blocks: still the whole-array step's bits.
    assert rows == [("adam", "True"), ("sgd", "True"), ("rmsprop", "True")]


def test_bench_rd(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "bench_rd.py", "--width", "64", "--batch", "8",
               "--repeats", "1")
    rows = dict(re.findall(r"^\s*(rd-dct|rd-gaussian|dense)\s.*\s(\d+)$", out, re.MULTILINE))
    # An RD layer trains its two diagonals and a bias; a dense one its matrix.
    assert rows == {"rd-dct": "192", "rd-gaussian": "192", "dense": str(64 * 64 + 64)}
    assert len(re.findall(r"^dense / rd-\w+: ", out, re.MULTILINE)) == 2


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bench_stacking(monkeypatch, capsys, tmp_path):
    # No Fashion-MNIST in an empty folder: the script's random stand-in,
    # which needs no 60000-image read.
    monkeypatch.setenv("SKDFA_FASHION_MNIST", str(tmp_path))
    out = _run(monkeypatch, capsys, "bench_stacking.py", "--n-train", "300",
               "--n-estimators", "2", "--hidden", "8", "--epochs", "1")
    assert out.startswith("data: SYNTHETIC random data, X (300, 784) float32")
    rows = re.findall(r"^\s*(-?1)\s+[\d.]+\s+[\d.]+\s+\d+\s+\d+\s+([\d.]+)$", out, re.MULTILINE)
    assert [n_jobs for n_jobs, _ in rows] == ["1", "-1"]
    # The fitted model does not depend on n_jobs, nor does its test accuracy.
    assert rows[0][1] == rows[1][1]


def test_bench_custom_rules(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "bench_custom_rules.py", "--epochs", "1", "--seeds", "0")
    rows = re.findall(r"^(.+?)\s+(\d\.\d{3}) ± 0\.000\s+(\d\.\d{3}) ± 0\.000$", out,
                      re.MULTILINE)
    assert [row[0] for row in rows] == [
        '"dfa"', "ScaledDFA(3)", 'ScaledDFA(3, "map")', '"fa"', "ScaledFA(3)",
        "TrackingFA(0.01)",
    ]


def test_conv_feedback_forms(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "conv_feedback_forms.py", "--data", "digits",
               "--epochs", "1", "--seeds", "0")
    assert re.findall(r"^digits\s+(map|pooled|kernel)\s+[\d.]+\s+[\d.]+$", out,
                      re.MULTILINE) == ["map", "pooled", "kernel"]
