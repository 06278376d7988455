"""``skdfa reproduce biotorch-lenet``: its data preparation and recipes, a
tiny run on Fashion-MNIST and one on a generated CIFAR-10 archive."""

import json
from pathlib import Path

import numpy as np
import pytest

from skdfa._cli import _biotorch, _common, _progress, main

from .test_cifar import write_cifar_archive
from .test_fetch import _sha256, serve  # noqa: F401 (fixture)


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
    assert est.max_iter == 100
    assert est.conv_layers == ((6, 5), (16, 5), (120, 5)) and est.activation == "relu"
    # torch's xavier_uniform_ weights and zero biases (biotorch's "xavier").
    assert est.weight_init == "glorot_zero_bias"
    # FA and DFA: biotorch's CIFAR-10 rates, its xavier_uniform_ backward
    # weights and its DFA form; skdfa's 0.01 for BP and the sign rules.
    assert est.rule.conv_feedback == "kernel"
    recipes = {rule: (e.learning_rate_init, e.feedback_scale) for rule in _biotorch.RULES
               for e in [_biotorch.make_estimator(rule)]}
    assert recipes == {"bp": (1e-2, "auto"), "fa": (1e-3, "glorot"), "usf": (1e-2, "auto"),
                       "brsf": (1e-2, "glorot"), "frsf": (1e-2, "glorot"),
                       "dfa": (1e-4, "glorot")}


def test_shorter_runs_scale_the_learning_rate_steps():
    # biotorch drops the rate after half and three quarters of its 100 epochs.
    assert _biotorch.make_estimator("bp", epochs=20).step_epochs == (10, 15)
    assert _biotorch.make_estimator("bp", epochs=2).step_epochs == (1, 2)


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


@pytest.mark.slow
def test_rerun_continues_an_interrupted_column_from_its_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_biotorch, "N_VALIDATION", 1000)
    monkeypatch.setattr(_common, "identify_idx_folder", lambda folder: "Fashion-MNIST")
    data = Path(__file__).parent / "data" / "fashion-mnist-subset"
    argv = ["reproduce", "biotorch-lenet", "--data", str(data), "--rules", "dfa",
            "--epochs", "4", "--n-train", "200", "--checkpoint-every", "2"]
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
    assert "interrupted: 0 of 1 cells finished" in capsys.readouterr().out
    checkpoint = tmp_path / "resumed" / "checkpoints" / "lenet-dfa-seed0.joblib"
    assert checkpoint.is_file()

    assert main([*argv, "--out", str(tmp_path / "resumed")]) == 0
    out = capsys.readouterr().out
    assert f"resuming at epoch 2 from {checkpoint}" in out
    assert "epoch 3/4" in out and "epoch 2/4" not in out
    assert not checkpoint.exists()  # the finished column needs none
    (whole,) = json.loads((tmp_path / "whole" / "biotorch_lenet.json").read_text())
    (resumed,) = json.loads((tmp_path / "resumed" / "biotorch_lenet.json").read_text())
    assert resumed["resumed_at_epoch"] == 2
    # The validation curve of one uninterrupted run (numpy: bit for bit), and
    # its best epoch's model.
    assert resumed["validation_curve"] == whole["validation_curve"]
    assert len(whole["validation_curve"]) == 4
    assert (resumed["best_epoch"], resumed["test_error"]) == (whole["best_epoch"],
                                                              whole["test_error"])

    # A third run finds the column finished and trains nothing.
    assert main([*argv, "--out", str(tmp_path / "resumed")]) == 0
    out = capsys.readouterr().out
    assert "(an earlier run)" in out and "epoch 1/4" not in out

    # Another learning rate, feedback scale or validation set is another
    # column: trained again, the first one kept.
    for option in (["--learning-rate", "5e-4"], ["--feedback-scale", "auto"],
                   ["--validation", "test"], ["--conv-feedback", "map"]):
        assert main([*argv, *option, "--out", str(tmp_path / "resumed")]) == 0
        out = capsys.readouterr().out
        assert "(an earlier run)" not in out and "epoch 1/4" in out
    assert "dfa: validation error" in out  # "map" cells: the label of the earlier tables
    settings = [(c["settings"]["learning_rate_init"], c["settings"]["feedback_scale"],
                 c["settings"].get("conv_feedback", "map"), c["validation"])
                for c in json.loads((tmp_path / "resumed" / "biotorch_lenet.json").read_text())]
    assert sorted(settings) == [
        (1e-4, "auto", "kernel", "holdout"), (1e-4, "glorot", "kernel", "holdout"),
        (1e-4, "glorot", "kernel", "test"), (1e-4, "glorot", "map", "holdout"),
        (5e-4, "glorot", "kernel", "holdout"),
    ]


def test_learning_rate_and_feedback_scale_options(capsys):
    est = _biotorch.make_estimator("fa", overrides=dict(learning_rate_init=1e-3,
                                                         feedback_scale="glorot"))
    assert (est.learning_rate_init, est.feedback_scale) == (1e-3, "glorot")
    for option in (["--learning-rate", "1e-3"], ["--validation", "test"],
                   ["--conv-feedback", "kernel"]):
        assert main(["reproduce", "nokland2016", *option]) == 2
        assert "biotorch-lenet's" in capsys.readouterr().err
    for bad in (["--feedback-scale", "big"], ["--learning-rate", "-1"]):
        assert main(["reproduce", "biotorch-lenet", *bad]) == 2
        assert "expected" in capsys.readouterr().err
    assert main(["reproduce", "biotorch-lenet", "--validation", "train"]) == 2
    assert "invalid choice: 'train'" in capsys.readouterr().err


def test_checkpoints_from_before_the_validation_option_still_match():
    # The identity a checkpoint of the default protocol was saved with
    # before --validation existed, and one of biotorch's protocol.
    settings = _biotorch.recipe_settings(_biotorch.make_estimator("fa"))
    before = dict(rule="fa", epochs=100, seed=0, n_train=50000, data="MNIST", device="numpy",
                  settings=settings)
    common = {k: v for k, v in before.items() if k != "rule"}
    assert _biotorch.cell_identity("fa", **common, validation="holdout") == before
    assert _biotorch.cell_identity("fa", **common, validation="test") != before


def test_conv_feedback_option_sets_the_direct_rules_form(capsys):
    from skdfa.rules import DirectFeedbackAlignment, SignDirectFeedbackAlignment

    kernel = dict(conv_feedback="kernel")
    assert _biotorch.make_estimator("dfa", overrides=kernel).rule == \
        DirectFeedbackAlignment(conv_feedback="kernel")
    assert _biotorch.make_estimator("skdfa.rules:SignDirectFeedbackAlignment",
                                    overrides=kernel).rule == \
        SignDirectFeedbackAlignment(conv_feedback="kernel")
    # Recorded only when not "map", the form of the cells before the recipe
    # took biotorch's: those cells keep their identity.
    assert _biotorch.recipe_settings(_biotorch.make_estimator("dfa"))["conv_feedback"] == "kernel"
    assert "conv_feedback" not in _biotorch.recipe_settings(
        _biotorch.make_estimator("dfa", overrides=dict(conv_feedback="map")))
    # A rule without the two forms is refused before any data is read.
    status = main(["reproduce", "biotorch-lenet", "--data", "/nonexistent", "--rules",
                   "dfa,fa,usf", "--conv-feedback", "kernel"])
    assert status == 1
    assert "fa, usf have none" in capsys.readouterr().err
    assert main(["reproduce", "biotorch-lenet", "--conv-feedback", "maps"]) == 2
    assert "invalid choice: 'maps'" in capsys.readouterr().err


@pytest.mark.slow
def test_validation_on_the_test_set_trains_on_every_training_image(tmp_path, capsys,
                                                                  monkeypatch):
    # biotorch's code: no images held out, the best epoch chosen on the test set.
    monkeypatch.setattr(_common, "identify_idx_folder", lambda folder: "Fashion-MNIST")
    data = Path(__file__).parent / "data" / "fashion-mnist-subset"
    assert main(["reproduce", "biotorch-lenet", "--data", str(data), "--rules", "bp",
                 "--epochs", "3", "--validation", "test", "--out", str(tmp_path),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    n_train, n_test = 3000, 2000
    assert f"{n_train} train / {n_test} test images, the best epoch chosen on the test" in out
    assert "(--validation test)" in out
    (cell,) = json.loads((tmp_path / "biotorch_lenet.json").read_text())
    assert cell["validation"] == "test" and cell["n_train"] == n_train
    # The curve is the test error of each epoch: the model kept is its minimum's.
    assert cell["test_error"] == pytest.approx(min(cell["validation_curve"]))
    assert cell["best_epoch"] == 1 + int(np.argmin(cell["validation_curve"]))


def test_a_diverging_column_is_named_in_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_biotorch, "N_VALIDATION", 1000)
    monkeypatch.setattr(_common, "identify_idx_folder", lambda folder: "Fashion-MNIST")
    data = Path(__file__).parent / "data" / "fashion-mnist-subset"
    status = main(["reproduce", "biotorch-lenet", "--data", str(data), "--rules", "usf,fa",
                   "--epochs", "2", "--n-train", "200", "--learning-rate", "1",
                   "--feedback-scale", "glorot", "--out", str(tmp_path), "--quiet"])
    assert status == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("skdfa: error: LeNet, FA: Training diverged in epoch 1: the loss "
                          "became ") and "\n" not in err
    assert "Lower learning_rate_init (now 1.0)" in err
    # The column finished before it is kept.
    cells = json.loads((tmp_path / "biotorch_lenet.json").read_text())
    assert [c["rule"] for c in cells] == ["usf"]


def test_table_columns_line_up_for_a_long_rule_name():
    def cell(rule, error):
        return _biotorch.Cell(rule=rule, data="MNIST", epochs=2, best_epoch=2,
                              validation_error=error, test_error=error, biotorch_error=None,
                              n_train=10, seed=0, device="numpy", fit_seconds=1.0,
                              resumed_at_epoch=0)

    lines = _biotorch.format_table([cell("bp", 1.5), cell("my_rules:KernelDirectFA", 12.25)])
    assert "--validation test" not in lines
    kernel = _biotorch.Cell(**{**vars(cell("dfa", 20.5)), "settings": {"conv_feedback": "kernel"},
                               "validation": "test"})
    table = _biotorch.format_table([cell("bp", 1.5), kernel]).splitlines()
    assert table[4].startswith("dfa (kernel)") and table[4].split()[2] == "-"
    assert table[-2].endswith("(--validation test).")
    header, _, _, bp, mine = lines.splitlines()[:5]
    # Each number ends where its column's title ends.
    end = header.index("validation") + len("validation")
    assert bp[:end].endswith("1.50") and mine[:end].endswith("12.25")
    assert mine.startswith("my_rules:KernelDirectFA ")


# -- CIFAR-10: biotorch's CIFAR LeNet and recipe ------------------------------------


@pytest.mark.parametrize("rule, rate", [("bp", 0.1), ("fa", 1e-3), ("dfa", 1e-4), ("usf", 0.1),
                                        ("frsf", 0.1), ("brsf", 0.1)])
def test_cifar10_recipe_is_biotorchs_configuration(rule, rate):
    # benchmark_configs/cifar10/le_net/sgd/*.yaml: SGD lr, momentum 0.9,
    # weight decay 1e-4 on a mean loss over batches of 128, 250 epochs,
    # multistep_lr at 100, 150, 200, xavier weights and backward weights.
    est = _biotorch.make_estimator(rule, epochs=_biotorch.paper_epochs("cifar10"),
                                   data="CIFAR-10")
    assert est.learning_rate_init == rate and est.max_iter == 250
    assert (est.solver, est.momentum, est.nesterovs_momentum) == ("sgd", 0.9, False)
    assert est.step_epochs == (100, 150, 200) and est.step_factor == 0.1
    assert est.batch_size == 128 and est.alpha == pytest.approx(1e-4 * 128)
    assert (est.weight_init, est.feedback_scale) == ("glorot_zero_bias", "glorot")
    # biotorch/models/le_net.py, LeNetCIFAR.
    assert est.conv_layers == ((32, 3), (64, 3), (128, 3)) and est.global_pool
    assert est.hidden_layer_sizes == (256,) and est.input_shape == (3, 32, 32)
    assert getattr(est.rule, "conv_feedback", None) == ("kernel" if rule == "dfa" else None)
    assert _biotorch.make_estimator("dfa", data="CIFAR-10", overrides=dict(
        conv_feedback="map")).rule.conv_feedback == "map"
    assert _biotorch.paper_epochs("mnist") == 100


def test_cifar10_split_is_biotorchs():
    import random

    X, y = np.arange(50000).reshape(-1, 1), np.arange(50000)
    X_fit, X_val, y_fit, y_val = _biotorch.cifar10_split(X, y)
    # biotorch/datasets/cifar.py, CIFAR10Benchmark, with the global generator.
    state = random.getstate()
    try:
        random.seed(0)
        val_indices = random.sample(range(0, len(X)), 5000)
    finally:
        random.setstate(state)
    np.testing.assert_array_equal(y_val, val_indices)
    np.testing.assert_array_equal(y_fit, np.delete(y, val_indices))
    np.testing.assert_array_equal(X_fit[:, 0], y_fit)


def test_flip_and_crop_are_random_flips_and_crops_of_the_padded_images():
    rng = np.random.default_rng(0)
    X = rng.random((64, 3072), dtype=np.float32)
    X_before = X.copy()
    out = _biotorch.flip_and_crop(X, np.random.default_rng(1))
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_array_equal(X, X_before)
    flips, offsets = [], set()
    for image, new in zip(X.reshape(-1, 3, 32, 32), out.reshape(-1, 3, 32, 32)):
        found = [(flip, i, j) for flip in (False, True) for i in range(9) for j in range(9)
                 if np.array_equal(new, np.pad(image[..., ::-1] if flip else image,
                                               [(0, 0), (4, 4), (4, 4)])
                                   [:, i:i + 32, j:j + 32])]
        assert len(found) == 1  # black borders make each crop's offset unique
        flips.append(found[0][0])
        offsets.add(found[0][1:])
    assert 16 < sum(flips) < 48 and len(offsets) > 30
    # The same draws for the same epoch, other ones for the next.
    epoch_inputs = _biotorch.cifar10_epoch_inputs(seed=0)
    np.testing.assert_array_equal(epoch_inputs(X, 3), epoch_inputs(X, 3))
    assert not np.array_equal(epoch_inputs(X, 3), epoch_inputs(X, 4))


def test_normalize_cifar10_uses_each_channels_statistics():
    X = np.full((2, 3072), 0.5, dtype=np.float32)
    got = _biotorch.normalize_cifar10(X).reshape(2, 3, 1024)
    for channel, (mean, std) in enumerate(zip(*_biotorch.CIFAR10_NORMALIZATION)):
        np.testing.assert_allclose(got[:, channel], (0.5 - mean) / std, rtol=1e-6)


# 90 training images: batch 128 is clipped to them.
@pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")
def test_tiny_run_on_a_generated_cifar10_archive(tmp_path, capsys, monkeypatch,
                                                  serve):  # noqa: F811
    # --data cifar10: fetch_cifar10 downloads the archive (a small one in
    # CIFAR-10's python format, served from a folder) into the data home.
    from skdfa.datasets import _cifar

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    arrays = write_cifar_archive(mirror / _cifar.CIFAR10_ARCHIVE, n_per_batch=20)
    monkeypatch.setattr(_cifar, "CIFAR10_MIRRORS", (serve(mirror).url,))
    monkeypatch.setattr(_cifar, "CIFAR10_SHA256",
                        {_cifar.CIFAR10_ARCHIVE: _sha256(mirror / _cifar.CIFAR10_ARCHIVE)})
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "home"))
    epochs_drawn = []
    draw = _biotorch.cifar10_epoch_inputs

    def recording(seed):
        def epoch_inputs(X, epoch):
            epochs_drawn.append(epoch)
            return draw(seed)(X, epoch)
        return epoch_inputs

    monkeypatch.setattr(_biotorch, "cifar10_epoch_inputs", recording)
    argv = ["reproduce", "biotorch-lenet", "--data", "cifar10", "--rules", "bp,dfa",
            "--epochs", "2", "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # 100 training images: 10 held out, as biotorch's 5000 of 50000.
    assert "on CIFAR-10: 90 train / 10 validation / 20 test images, CIFAR LeNet" in out
    assert "lr / 10 after epochs 1, 1, 2" in out and "CIFAR 10, LeNet (SGD)" in out
    cells = json.loads((tmp_path / "out" / "biotorch_lenet.json").read_text())
    assert [c["rule"] for c in sorted(cells, key=lambda c: c["rule"])] == ["bp", "dfa"]
    for cell in cells:
        assert cell["biotorch_error"] == {"bp": 14.23, "dfa": 54.21}[cell["rule"]]
        assert cell["n_train"] == 90 and len(cell["validation_curve"]) == 2
        assert cell["settings"]["batch_size"] == 128
        assert cell["settings"].get("conv_feedback") == ("kernel" if cell["rule"] == "dfa"
                                                         else None)
    assert epochs_drawn == [0, 1, 0, 1]  # each column's epochs train on new flips and crops
    assert (tmp_path / "home" / "cifar10" / _cifar.CIFAR10_ARCHIVE).is_file()
    assert len(arrays["test_batch"][1]) == 20

    # The archive's path works too.
    archive = tmp_path / "home" / "cifar10" / _cifar.CIFAR10_ARCHIVE
    argv[argv.index("cifar10")] = str(archive)
    assert main([*argv[:-3], "--quiet"]) == 0
    assert f"on CIFAR-10 ({archive})" in capsys.readouterr().out
