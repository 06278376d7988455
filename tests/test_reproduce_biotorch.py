"""``skdfa reproduce biotorch-lenet``: its data preparation and recipe, and a
tiny run on Fashion-MNIST."""

import json
from pathlib import Path

import numpy as np
import pytest

from skdfa._cli import _biotorch, _common, main


def test_resize_is_bilinear_with_half_pixel_centres():
    torch = pytest.importorskip("torch")
    X = np.random.RandomState(0).randint(0, 256, size=(3, 784)) / 255
    expected = torch.nn.functional.interpolate(
        torch.tensor(X).reshape(3, 1, 28, 28), size=(32, 32), mode="bilinear",
        align_corners=False,
    ).reshape(3, -1).numpy()
    got = _biotorch.resize_to_32(X)
    assert got.dtype == np.float32
    # Rounded to 8 bits, as the resize of an 8-bit image (a value on a
    # rounding boundary may go either way).
    difference = np.abs(got - np.round(expected * 255) / 255)
    assert difference.max() <= 1 / 255 + 1e-6 and np.mean(difference > 1e-6) < 0.01


def test_prepare_normalises_with_the_data_sets_statistics():
    X = np.full((1, 784), 0.5)
    np.testing.assert_allclose(_biotorch.prepare(X, "MNIST"), (128 / 255 - 0.1307) / 0.3081,
                               rtol=1e-6)


def test_recipe():
    est = _biotorch.make_estimator("dfa", epochs=100)
    assert (est.solver, est.momentum, est.nesterovs_momentum) == ("sgd", 0.9, False)
    assert (est.learning_rate, est.step_epochs, est.step_factor) == ("step", (50, 75), 0.1)
    # torch's weight decay 1e-3 on a mean loss over batches of 64.
    assert est.batch_size == 64 and est.alpha == pytest.approx(0.064)
    assert est.learning_rate_init == 1e-4 and est.max_iter == 100
    assert est.conv_layers == ((6, 5), (16, 5), (120, 5)) and est.activation == "relu"


def test_split_holds_out_ten_thousand_training_images():
    X, y = np.arange(12000).reshape(-1, 1), np.arange(12000)
    X_fit, X_val, y_fit, y_val = _biotorch.split(X, y, seed=0)
    assert len(X_val) == 10000 and len(X_fit) == 2000
    assert not set(y_fit) & set(y_val)


@pytest.mark.slow
def test_tiny_run_on_fashion_mnist(tmp_path, capsys, monkeypatch):
    # The Fashion-MNIST subset shipped with the tests has 3000 training
    # images: 1000 of them are held out instead of biotorch's 10000.
    # Its files are a cut of the published ones, so their checksums cannot
    # say which data set they are.
    monkeypatch.setattr(_biotorch, "N_VALIDATION", 1000)
    monkeypatch.setattr(_common, "identify_idx_folder", lambda folder: "Fashion-MNIST")
    data = Path(__file__).parent / "data" / "fashion-mnist-subset"
    status = main(["reproduce", "biotorch-lenet", "--data", str(data), "--rules",
                   "bp,usf", "--epochs", "2", "--n-train", "500", "--out", str(tmp_path),
                   "--quiet"])
    assert status == 0
    out = capsys.readouterr().out
    assert "biotorch's LeNet table" in out and "500 train / 1000 validation" in out
    cells = json.loads((tmp_path / "biotorch_lenet.json").read_text())
    assert {c["rule"] for c in cells} == {"bp", "usf"}
    for cell in cells:
        assert len(cell["validation_curve"]) == 2
        assert cell["validation_error"] == min(cell["validation_curve"])
        assert cell["biotorch_error"] == {"bp": 9.20, "usf": 9.69}[cell["rule"]]
        assert 0 < cell["test_error"] < 90
