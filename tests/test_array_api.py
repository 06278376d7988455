"""The engine on torch tensors and array_api_strict arrays, against numpy.

The reference is the same model fitted on numpy arrays: weights and feedback
come from the same numpy seeds, so every rule, layer type, optimizer and
training option must give the numpy model's predictions to float32
tolerance. torch draws its dropout masks and its epochs' row orders on the
tensors' device, from streams of its own: the comparisons inject numpy's
draws (``_numpy_draws``, for every test of this module unless it asks for
``device_draws``), and the device's draws are tested for their distribution
and reproducibility. sklearn's own array API checks run over every estimator in
``test_common.py`` and ``test_rd.py`` (they follow ``array_api_support``).
"""

import contextlib
import importlib
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._array_api import get_namespace_and_device, move_estimator_to

from skdfa import ConvDFAClassifier, DFAClassifier, DFARegressor, RDClassifier
from skdfa._array_ops import ArrayOps, TorchOps, array_ops
from skdfa.rules import DirectFeedbackAlignment

from ._estimators import rules_of

torch = pytest.importorskip("torch")
xps = pytest.importorskip("array_api_strict")

# Float32 training, a few epochs: numpy and torch round differently (BLAS,
# torch's fused Adam kernel), so outputs agree to float32 precision, not bits.
# Adam's first steps move a weight by about the learning rate whatever its
# gradient's size, so a gradient that rounds to the other side of zero moves
# a few weights apart by ~1e-4: the largest difference gets that slack, the
# mean difference none.
RTOL, ATOL, MEAN_ATOL = 1e-4, 3e-4, 1e-5


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(n_samples=90, n_classes=3, seed=0):
    X, y = make_classification(
        n_samples=n_samples, n_features=8, n_informative=5, n_classes=n_classes,
        random_state=seed,
    )
    return X.astype(np.float32), y


_DEVICE_DRAWS = {name: getattr(TorchOps, name) for name in ("dropout_masks", "shuffled_rows")}


@contextlib.contextmanager
def _numpy_draws():
    """torch fits draw their dropout masks and row orders as numpy does (with
    numpy, then copied to the device), so that they drop the units and visit
    the rows numpy does."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _DEVICE_DRAWS:
            patch.setattr(TorchOps, name, getattr(ArrayOps, name))
        yield


@pytest.fixture(autouse=True)
def _numpy_draws_unless_asked():
    with _numpy_draws():
        yield


@pytest.fixture
def device_draws(monkeypatch):
    """torch fits draw on the device, as they do outside this module."""
    for name, method in _DEVICE_DRAWS.items():
        monkeypatch.setattr(TorchOps, name, method)


def _fit_both(est, X, y, to, **fit_params):
    """``est`` fitted on numpy arrays, and a clone fitted on ``to(arrays)``."""
    ref = clone(est).fit(X, y, **fit_params)
    moved = {k: to(v) for k, v in fit_params.items()}
    with config_context(array_api_dispatch=True):
        other = clone(est).fit(to(X), to(y), **moved)
    return ref, other


def _numpy(a):
    return a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _assert_close(actual, expected):
    actual = _numpy(actual)
    assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
    assert np.mean(np.abs(actual - expected)) < MEAN_ATOL


def _assert_same_model(ref, other, X, to):
    for a, b in zip(ref._fit_state.network.params, other._fit_state.network.params):
        _assert_close(b, a)
    with config_context(array_api_dispatch=True):
        out = other.transform(to(X))
    _assert_close(out, ref.transform(X))


SMALL = dict(hidden_layer_sizes=(16, 12), max_iter=4, random_state=0, batch_size=32)


@pytest.mark.parametrize(
    "Estimator, rule",
    [(E, rule) for E in [DFAClassifier, RDClassifier] for rule in rules_of(E)],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_torch_fit_equals_numpy_fit_for_every_rule(Estimator, rule):
    X, y = _data()
    params = dict(SMALL)
    if rule == "usf":
        # uSF's feedback is +-s: a hidden unit whose feedback column has one
        # sign for every class receives sum(e) * s = 0 with softmax outputs,
        # i.e. pure rounding noise, which Adam turns into steps of size lr
        # (numpy and torch round differently). SGD scales that noise by lr.
        params.update(solver="sgd", learning_rate_init=0.05)
    est = Estimator(rule=rule, **params)
    ref, other = _fit_both(est, X, y, torch.asarray)
    assert all(isinstance(p, torch.Tensor) for p in other._fit_state.network.params)
    _assert_same_model(ref, other, X, torch.asarray)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", nesterovs_momentum=True),
        dict(solver="sgd", nesterovs_momentum=False),
        dict(solver="rmsprop"),
        dict(dropout=(0.2, 0.3)),
        dict(early_stopping=True, validation_fraction=0.2, max_iter=6),
        dict(activation="relu", alpha=1e-2),
        # The L2 penalty's gradient: added by torch's fused Adam, by foreach
        # kernels for sgd and rmsprop, and to kp's learned feedback by the rule.
        dict(alpha=0.5),
        dict(alpha=0.5, solver="sgd"),
        dict(alpha=0.5, solver="rmsprop"),
        dict(alpha=0.5, rule="kp"),
        dict(activation="logistic", output_activation="sigmoid"),
        dict(track_alignment=1),
        dict(shuffle=False),
        dict(rule="bp", solver="lbfgs", max_iter=3),
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_torch_fit_equals_numpy_fit_for_each_option(params):
    X, y = _data()
    est = DFAClassifier(**{**SMALL, **params})
    ref, other = _fit_both(est, X, y, torch.asarray)
    _assert_same_model(ref, other, X, torch.asarray)
    if est.early_stopping:
        assert_allclose(other.validation_scores_, ref.validation_scores_)
    if est.track_alignment:
        assert isinstance(other.alignment_, torch.Tensor)
        assert_allclose(_numpy(other.alignment_), ref.alignment_, atol=1e-2)


@pytest.mark.parametrize("rd_matrix", ["gaussian", "dct"])
def test_rd_layers_on_torch_equal_numpy(rd_matrix):
    # 8 inputs -> 20 -> 5 units: the DCT pads in the first layer and
    # selects coefficients in the second.
    X, y = _data()
    est = RDClassifier(
        hidden_layer_sizes=(20, 5), rd_matrix=rd_matrix, output_layer="rd",
        dropout=0.1, max_iter=4, random_state=0, track_alignment=1,
    )
    ref, other = _fit_both(est, X, y, torch.asarray)
    _assert_same_model(ref, other, X, torch.asarray)
    # The weight-alignment angles map the identity through the RD layers.
    for name in ("alignment_", "weight_alignment_"):
        assert isinstance(getattr(other, name), torch.Tensor)
        assert_allclose(_numpy(getattr(other, name)), getattr(ref, name), atol=1e-2)


def test_sample_weight_and_regressor_on_torch():
    X, y = _data()
    weights = np.random.RandomState(0).uniform(0, 2, len(y)).astype(np.float32)
    ref, other = _fit_both(DFAClassifier(**SMALL), X, y, torch.asarray, sample_weight=weights)
    _assert_same_model(ref, other, X, torch.asarray)
    target = X[:, :2] @ np.array([[1.0, -1.0], [0.5, 2.0]], dtype=np.float32)
    ref, other = _fit_both(DFARegressor(**SMALL), X, target, torch.asarray)
    _assert_same_model(ref, other, X, torch.asarray)
    counts = np.random.RandomState(0).poisson(2.0, size=len(y)).astype(np.float32)
    ref, other = _fit_both(DFARegressor(loss="poisson", **SMALL), X, counts, torch.asarray)
    _assert_same_model(ref, other, X, torch.asarray)
    with config_context(array_api_dispatch=True):
        _assert_close(other.predict(torch.asarray(X)), ref.predict(X))


@pytest.mark.parametrize("early_stopping", [False, True])
def test_batches_of_zero_weight_are_skipped_on_torch_as_on_numpy(early_stopping):
    # The batch weight sums are read per epoch on torch (ArrayOps.batch_totals):
    # each batch gets its own, and a batch of zero weight makes no update.
    X, y = _data()
    weights = np.random.RandomState(0).uniform(0, 2, len(y)).astype(np.float32)
    weights[np.random.RandomState(1).rand(len(y)) < 0.6] = 0
    est = DFAClassifier(**{**SMALL, "batch_size": 4, "early_stopping": early_stopping,
                           "validation_fraction": 0.2, "alpha": 0.1})
    ref, other = _fit_both(est, X, y, torch.asarray, sample_weight=weights)
    _assert_same_model(ref, other, X, torch.asarray)
    assert_allclose(other.loss_curve_, ref.loss_curve_, rtol=1e-5)
    n_batches = -(-len(y) // 4) if not early_stopping else -(-72 // 4)
    assert other._fit_state.training.n_updates == ref._fit_state.training.n_updates < 4 * n_batches


@pytest.mark.parametrize("Estimator", [DFAClassifier, RDClassifier])
def test_array_api_strict_fit_equals_numpy_fit(Estimator):
    X, y = _data()
    est = Estimator(rule="fa", dropout=0.2, **SMALL)
    ref, other = _fit_both(est, X, y, xps.asarray)
    _assert_same_model(ref, other, X, xps.asarray)


# The blocks of the CIFAR nets on 2x9x9 images: a strided convolution,
# overlapping or average pooling, global average pooling (SGD: Adam's first
# steps would amplify float32 rounding, see RTOL).
CONV_BLOCKS = dict(conv_layers=((3, 3), (4, 3)), padding=1, conv_stride=(1, 2),
                   pool_size=(3, 1), pool_stride=2, global_pool=True, input_shape=(2, 9, 9),
                   hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.05, max_iter=3,
                   batch_size=20, random_state=0)


@pytest.mark.parametrize("namespace", ["torch", "array_api_strict"])
@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("rule", ["fa", "dfa-kernel"])
def test_conv_blocks_fit_equals_numpy_fit(rule, pool, namespace):
    from skdfa.rules import DirectFeedbackAlignment

    rng = np.random.RandomState(0)
    X, y = rng.uniform(-1, 1, (60, 162)).astype(np.float32), np.arange(60) % 3
    rule = DirectFeedbackAlignment(conv_feedback="kernel") if rule == "dfa-kernel" else rule
    est = ConvDFAClassifier(**CONV_BLOCKS, pool=pool, rule=rule)
    to = torch.asarray if namespace == "torch" else xps.asarray
    ref, other = _fit_both(est, X, y, to)
    _assert_same_model(ref, other, X, to)


def test_every_method_answers_in_the_namespace_of_X():
    X, y = _data()
    Xt = torch.asarray(X)
    with config_context(array_api_dispatch=True):
        clf = DFAClassifier(**SMALL).fit(Xt, torch.asarray(y))
        clf.partial_fit(Xt, torch.asarray(y))
        outputs = {
            name: getattr(clf, name)(Xt)
            for name in ("predict", "predict_proba", "predict_log_proba",
                         "decision_function", "transform")
        }
        score = clf.score(Xt, torch.asarray(y))
    ref = DFAClassifier(**SMALL).fit(X, y).partial_fit(X, y)
    for name, out in outputs.items():
        assert isinstance(out, torch.Tensor), name
        assert_allclose(_numpy(out), getattr(ref, name)(X), rtol=RTOL, atol=ATOL)
    assert score == pytest.approx(ref.score(X, y))
    assert all(isinstance(c, torch.Tensor) for c in clf.coefs_ + clf.feedback_)


def test_string_labels_come_back_as_numpy():
    X, y = _data(n_classes=2)
    labels = np.array(["no", "yes"])[y]
    with config_context(array_api_dispatch=True):
        clf = DFAClassifier(**SMALL).fit(torch.asarray(X), labels)
        predicted = clf.predict(torch.asarray(X))
    assert isinstance(predicted, np.ndarray)
    assert_allclose(
        (predicted == DFAClassifier(**SMALL).fit(X, labels).predict(X)).mean(), 1.0
    )


def test_warm_start_and_divergence_snapshot_on_torch():
    X, y = _data()
    Xt, yt = torch.asarray(X), torch.asarray(y)
    with config_context(array_api_dispatch=True):
        twice = DFAClassifier(warm_start=True, **{**SMALL, "max_iter": 2})
        twice.fit(Xt, yt).fit(Xt, yt)
    once = DFAClassifier(**{**SMALL, "max_iter": 4}).fit(X, y)
    assert_allclose(_numpy(twice.coefs_[0]), once.coefs_[0], rtol=RTOL, atol=ATOL)

    # SGD at this rate on ReLU units overflows in epoch 6 (test_reliability).
    rng = np.random.RandomState(0)
    X_reg = rng.randn(60, 5)
    y_reg = X_reg @ rng.randn(5) * 10
    diverging = DFARegressor(
        hidden_layer_sizes=(8,), activation="relu", solver="sgd",
        learning_rate_init=0.05, batch_size=10, max_iter=50, random_state=0,
    )
    with config_context(array_api_dispatch=True), pytest.raises(ValueError, match="diverged"):
        diverging.fit(torch.asarray(X_reg), torch.asarray(y_reg))
    assert diverging.n_iter_ > 0
    assert all(bool(torch.isfinite(p).all()) for p in diverging._fit_state.network.params)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_torch_dropout_masks_have_the_rate_and_scale(rate, device_draws):
    masks = array_ops(torch.zeros(1)).dropout_masks(np.random.default_rng(0))
    masks.start_epoch()
    out = torch.empty(400, 500)
    first = masks.draw(out, rate).clone()
    second = masks.draw(out, rate).clone()
    for mask in (first, second):
        kept = mask != 0
        # Inverted dropout: the kept units are scaled by 1 / (1 - rate).
        assert_allclose(mask[kept].numpy(), 1 / (1 - rate), rtol=1e-7)
        # Four units share a 64-bit draw: each of the four keeps 1 - rate of
        # its units, within 5 standard deviations.
        lanes = kept.reshape(-1, 4).double().mean(axis=0).numpy()
        sd = np.sqrt(rate * (1 - rate) / (out.numel() / 4))
        assert_allclose(lanes, 1 - rate, atol=5 * sd)
    assert not torch.equal(first, second)
    # A new epoch reseeds from the numpy stream: the same stream, the same masks.
    again = array_ops(torch.zeros(1)).dropout_masks(np.random.default_rng(0))
    again.start_epoch()
    assert torch.equal(again.draw(out, rate), first)


def test_torch_fit_with_dropout_is_reproducible_and_splits_into_epochs(device_draws):
    X, y = _data()
    params = {**SMALL, "dropout": (0.2, 0.3)}

    def fit(**extra):
        with config_context(array_api_dispatch=True):
            return DFAClassifier(**{**params, **extra}).fit(torch.asarray(X), torch.asarray(y))

    once, again = fit(), fit()
    assert once.loss_curve_ == again.loss_curve_
    for a, b in zip(once._fit_state.network.params, again._fit_state.network.params):
        assert torch.equal(a, b)
    # The device's generator is reseeded at each epoch from the estimator's
    # stream, which warm_start carries on: 2 + 2 epochs are 4 epochs.
    split = fit(max_iter=2, warm_start=True)
    with config_context(array_api_dispatch=True):
        split.fit(torch.asarray(X), torch.asarray(y))
    assert split.loss_curve_ == once.loss_curve_
    for a, b in zip(split._fit_state.network.params, once._fit_state.network.params):
        assert torch.equal(a, b)
    # So does a pickled checkpoint (what ``reproduce`` resumes from).
    split = pickle.loads(pickle.dumps(fit(max_iter=2, warm_start=True)))
    with config_context(array_api_dispatch=True):
        split.fit(torch.asarray(X), torch.asarray(y))
    assert split.loss_curve_ == once.loss_curve_
    for a, b in zip(split._fit_state.network.params, once._fit_state.network.params):
        assert torch.equal(a, b)
    # The masks and row orders are the device's own, not numpy's.
    with _numpy_draws():
        numpy_draws = fit()
    assert not torch.equal(numpy_draws.coefs_[0], once.coefs_[0])


def test_torch_shuffles_are_drawn_on_the_device(device_draws, monkeypatch):
    ops = array_ops(torch.zeros(1))
    rng = np.random.RandomState(0)
    state = rng.get_state()
    first, second = ops.shuffled_rows(rng, 1000), ops.shuffled_rows(rng, 1000)
    for order in (first, second):
        assert order.device == torch.zeros(1).device and order.dtype == torch.int64
        assert torch.equal(torch.sort(order).values, torch.arange(1000))
    assert not torch.equal(first, second)
    # One draw from the estimator's stream seeds each epoch's order.
    rng.set_state(state)
    assert torch.equal(ops.shuffled_rows(rng, 1000), first)
    # No index crosses from the host during training: a fit without a
    # validation split copies none, whatever its number of epochs.
    copies = []
    copy = TorchOps.index
    monkeypatch.setattr(TorchOps, "index", lambda self, i: copies.append(i) or copy(self, i))
    X, y = _data()
    with config_context(array_api_dispatch=True):
        DFAClassifier(**SMALL).fit(torch.asarray(X), torch.asarray(y))
    assert copies == []


@pytest.mark.parametrize("sample_weight", [False, True])
def test_torch_fit_reads_from_the_device_per_epoch_not_per_batch(
        sample_weight, device_draws, monkeypatch):
    # A read on the host (float(), bool(), .item(), .tolist()) waits for the
    # device. The batch losses, and the batches' weight sums, are read once
    # per epoch: a fit reads as often with 30 batches per epoch as with 3.
    reads = []
    for name in ("__float__", "__bool__", "__int__", "item", "tolist", "numpy"):
        method = getattr(torch.Tensor, name)
        monkeypatch.setattr(
            torch.Tensor, name,
            lambda self, *a, _m=method, _n=name, **k: reads.append(_n) or _m(self, *a, **k),
        )
    X, y = _data()
    fit_params = {}
    if sample_weight:
        weights = np.random.RandomState(0).uniform(0, 2, len(y)).astype(np.float32)
        weights[:45] = 0  # batches of zero weight are skipped
        fit_params["sample_weight"] = torch.asarray(weights)

    def count_reads(batch_size, sync_every_batch=False):
        """Host reads and updates of a fit."""
        del reads[:]
        clf = DFAClassifier(**{**SMALL, "batch_size": batch_size, "alpha": 0.1})
        clf._sync_every_batch = sync_every_batch
        with config_context(array_api_dispatch=True):
            clf.fit(torch.asarray(X), torch.asarray(y), **fit_params)
        return len(reads), clf._fit_state.training.n_updates

    (many_reads, many_updates), (few_reads, few_updates) = count_reads(3), count_reads(30)
    assert many_reads == few_reads > 0 and many_updates > few_updates
    # The bench's "per-batch-sync" setting reads every update's loss, as the
    # loop did before.
    (many_synced, _), (few_synced, _) = count_reads(3, True), count_reads(30, True)
    assert many_synced - few_synced == many_updates - few_updates


def test_torch_shuffles_agree_with_numpys_in_distribution(device_draws):
    # Each row lands at each position with probability 1/n: over many
    # epochs, the mean position of every row is (n - 1) / 2.
    ops = array_ops(torch.zeros(1))
    rng = np.random.RandomState(0)
    n, epochs = 20, 2000
    positions = torch.stack([torch.argsort(ops.shuffled_rows(rng, n)) for _ in range(epochs)])
    sd = np.sqrt((n * n - 1) / 12 / epochs)
    assert_allclose(positions.double().mean(0).numpy(), (n - 1) / 2, atol=5 * sd)


def test_torch_loss_curve_equals_numpy_loss_curve():
    # The batch losses are summed on the device, weighted by batch size (the
    # last batch is smaller), as numpy sums them on the host.
    X, y = _data(n_samples=100)
    ref, other = _fit_both(DFAClassifier(**{**SMALL, "alpha": 0.1}), X, y, torch.asarray)
    assert_allclose(other.loss_curve_, ref.loss_curve_, rtol=1e-5)


def test_torch_divergence_is_found_at_the_epoch_end_and_keeps_the_last_finite_epoch():
    # The losses are read once per epoch on torch: the epoch in which the
    # loss overflowed is the one reported, and the model is the epoch before.
    rng = np.random.RandomState(0)
    X = rng.randn(100, 5)
    y = X @ rng.randn(5) * 10
    params = dict(
        hidden_layer_sizes=(8,), activation="relu", solver="sgd",
        learning_rate_init=0.05, batch_size=10, max_iter=50, random_state=0,
    )
    Xt, yt = torch.asarray(X), torch.asarray(y)
    with pytest.raises(ValueError, match=r"diverged in epoch 6.*last finite epoch \(5\)"):
        DFARegressor(**params).fit(X, y)
    diverged = DFARegressor(**params)
    with config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match=r"diverged in epoch 6.*last finite epoch \(5\)"):
            diverged.fit(Xt, yt)
        five = DFARegressor(**{**params, "max_iter": 5}).fit(Xt, yt)
    assert diverged.n_iter_ == 5
    assert diverged.loss_curve_ == five.loss_curve_
    for a, b in zip(diverged._fit_state.network.params, five._fit_state.network.params):
        assert torch.equal(a, b)


def test_torch_model_pickles_and_moves_to_numpy():
    X, y = _data()
    with config_context(array_api_dispatch=True):
        clf = DFAClassifier(**SMALL).fit(torch.asarray(X), torch.asarray(y))
        expected = _numpy(clf.predict_proba(torch.asarray(X)))
        loaded = pickle.loads(pickle.dumps(clf))
        assert_allclose(_numpy(loaded.predict_proba(torch.asarray(X))), expected)
        on_numpy = move_estimator_to(clf, np, "cpu")
    assert isinstance(on_numpy.coefs_[0], np.ndarray)
    assert on_numpy.coefs_[0] is on_numpy._fit_state.network.layers[0].coef
    assert_allclose(on_numpy.predict_proba(X), expected, rtol=1e-6)
    # The moved model keeps training where the torch one stopped.
    on_numpy.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert all(isinstance(m, np.ndarray) for m in on_numpy._fit_state.optimizer.ms)


def test_clear_errors():
    X, y = _data()
    Xt = torch.asarray(X)
    with config_context(array_api_dispatch=True):
        with pytest.raises(TypeError, match="sparse input is supported as a scipy"):
            DFAClassifier(**SMALL).fit(Xt.to_sparse(), torch.asarray(y))
        clf = DFAClassifier(**SMALL).fit(Xt, torch.asarray(y))
        with pytest.raises(ValueError, match=r"DFAClassifier.predict\(\) must use the same"):
            clf.predict(sp.csr_matrix(X))
        with pytest.raises(ValueError, match=r"partial_fit\(\) must use the same"):
            clf.partial_fit(X, y)
        with pytest.raises(TypeError, match="numpy and torch arrays only"):
            RDClassifier(rd_matrix="dct", **SMALL).fit(xps.asarray(X), xps.asarray(y))
    # Without dispatch, a torch model refuses numpy input instead of mixing them.
    with pytest.raises(ValueError, match="fitted on torch"):
        clf.predict(X)


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA is not available: GPU path not run"
)
def test_cuda_fit_matches_cpu():  # pragma: no cover - needs a GPU
    X, y = _data()
    ref, other = _fit_both(DFAClassifier(**SMALL), X, y, lambda a: torch.asarray(a, device="cuda"))
    with config_context(array_api_dispatch=True):
        out = other.predict_proba(torch.asarray(X, device="cuda"))
    assert out.device.type == "cuda"
    assert_allclose(_numpy(out), ref.predict_proba(X), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("cv", [None, 3])
def test_stacking_passes_tensors_through(cv):
    from sklearn.linear_model import RidgeClassifier

    from skdfa import StackingDFA

    X, y = _data()
    learner = DFAClassifier(hidden_layer_sizes=(8,), max_iter=3)
    for head in (None, RidgeClassifier()):
        stack = StackingDFA(
            learner, n_estimators=2, cv=cv, final_estimator=head, passthrough=True,
            random_state=0,
        )
        ref = clone(stack).fit(X, y)
        with config_context(array_api_dispatch=True):
            other = clone(stack).fit(torch.asarray(X), torch.asarray(y))
            X_meta = other.transform(torch.asarray(X))
            proba = other.decision_function(torch.asarray(X))
        assert isinstance(X_meta, torch.Tensor)
        assert all(isinstance(e.coefs_[0], torch.Tensor) for e in other.estimators_)
        _assert_close(X_meta, ref.transform(X))
        # A head without array API support gets numpy arrays.
        assert isinstance(proba, torch.Tensor if head is None else np.ndarray)
        assert_allclose(_numpy(proba), ref.decision_function(X), rtol=1e-3, atol=1e-3)


def test_training_goes_on_after_a_move_between_namespaces():
    # Adam's moments have one form on every namespace (torch's fused kernel
    # steps them on torch); a model moved mid-training must continue as if
    # it had stayed.
    X, y = _data()
    params = {**SMALL, "max_iter": 2, "warm_start": True}
    staying = DFAClassifier(**params).fit(X, y).fit(X, y)
    with config_context(array_api_dispatch=True):
        on_torch = DFAClassifier(**params).fit(torch.asarray(X), torch.asarray(y))
        moved = move_estimator_to(on_torch, np, "cpu")
    moved.fit(X, y)
    for a, b in zip(staying._fit_state.network.params, moved._fit_state.network.params):
        _assert_close(b, a)
    with config_context(array_api_dispatch=True):
        xp, _, device = get_namespace_and_device(torch.asarray(X))
        back = move_estimator_to(staying, xp, device)
        back.fit(torch.asarray(X), torch.asarray(y))
    staying.fit(X, y)
    for a, b in zip(staying._fit_state.network.params, back._fit_state.network.params):
        _assert_close(b, a)


def test_warm_start_with_new_settings_and_rebound_coefs_on_torch():
    # A changed rule redraws the feedback (with numpy, then moved), a changed
    # solver builds a new optimizer, and a rebound coefs_ array is the model.
    X, y = _data()

    def fit(to):
        clf = DFAClassifier(warm_start=True, **{**SMALL, "max_iter": 3})
        with config_context(array_api_dispatch=True):
            clf.fit(to(X), to(y))
            clf.set_params(rule="fa", solver="sgd").fit(to(X), to(y))
            clf.coefs_[0] = clf.coefs_[0] * 0.5
            return clf, clf.predict_proba(to(X))

    ref, expected = fit(lambda a: a)
    other, proba = fit(torch.asarray)
    assert all(isinstance(b, torch.Tensor) for b in other.feedback_)
    _assert_close(proba, expected)


# -- the array operations: looked up once, handed down -------------------------

# The engine's modules: within a fit or a prediction they compute with the
# ArrayOps the network was given, never looking the namespace up again.
ENGINE_MODULES = [
    "skdfa._network", "skdfa._layers", "skdfa._conv", "skdfa._rules",
    "skdfa._optimizers", "skdfa._training", "skdfa._base",
]

ENGINE_MODELS = {
    "dense-kp-adam": lambda: DFAClassifier((6, 5), rule="kp", alpha=1e-2),
    "dense-usf-rmsprop-dropout": lambda: DFAClassifier(
        (6, 5), rule="usf", solver="rmsprop", dropout=(0.1, 0.2)
    ),
    "dense-dkp-sgd-tracked-early": lambda: DFAClassifier(
        (6, 5), rule="dkp", solver="sgd", track_alignment=1, early_stopping=True
    ),
    "dense-brsf-tracked": lambda: DFAClassifier((6, 5), rule="brsf", track_alignment=1),
    "rd-dct-fa": lambda: RDClassifier((6, 5), rule="fa", rd_matrix="dct"),
    "conv-bp": lambda: ConvDFAClassifier(
        ((2, 3),), pool_size=2, input_shape=(1, 4, 4), hidden_layer_sizes=(5,), rule="bp",
        track_alignment=1,
    ),
    "conv-frsf": lambda: ConvDFAClassifier(
        ((2, 3),), pool_size=2, input_shape=(1, 4, 4), hidden_layer_sizes=(5,), rule="frsf",
    ),
    "conv-strided-avg-global-fa": lambda: ConvDFAClassifier(
        ((2, 2), (3, 2)), conv_stride=(1, 2), pool="avg", pool_size=(2, 1), pool_stride=1,
        global_pool=True, input_shape=(1, 4, 4), hidden_layer_sizes=(5,), rule="fa",
    ),
    "conv-overlapping-max-bp": lambda: ConvDFAClassifier(
        ((2, 2),), pool_size=(2,), pool_stride=1, input_shape=(1, 4, 4), hidden_layer_sizes=(5,),
        rule="bp",
    ),
}


def _forbid_lookups(monkeypatch):
    def lookup(array):
        raise AssertionError(f"array_ops() looked up again for a {type(array).__name__}")

    for name in ENGINE_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "array_ops"):
            monkeypatch.setattr(module, "array_ops", lookup)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
@pytest.mark.parametrize("model", sorted(ENGINE_MODELS))
def test_training_and_prediction_use_the_ops_they_were_given(model, namespace, monkeypatch):
    X, y = _data(n_samples=60)
    if model.startswith("conv"):
        X = X[:, :8].repeat(2, axis=1)  # 16 features: one 4x4 map
    to = torch.asarray if namespace == "torch" else np.asarray
    est = ENGINE_MODELS[model]().set_params(
        max_iter=2, batch_size=20, warm_start=True, random_state=0, n_iter_no_change=100
    )
    with config_context(array_api_dispatch=namespace == "torch"):
        est.fit(to(X), to(y))
        ops = est._fit_state.network.ops
        assert all(layer.ops is ops for layer in est._fit_state.network.layers)
        _forbid_lookups(monkeypatch)
        est.fit(to(X), to(y))
        if not est.early_stopping:
            est.partial_fit(to(X), to(y))
        for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
            getattr(est, method)(to(X))
        est.score(to(X), to(y))
    assert len(est.loss_curve_) == 4 + (not est.early_stopping)


@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
def test_a_model_moved_to_torch_and_back_continues_bit_for_bit(solver):
    # The move converts the parameters, the rule's state and the optimizer's,
    # and hands the layers the new namespace's ops; back on numpy, training
    # continues exactly as if the model had never left.
    X, y = _data()
    params = {**SMALL, "solver": solver, "rule": "kp", "alpha": 1e-2, "max_iter": 2,
              "warm_start": True}
    staying = DFAClassifier(**params).fit(X, y)
    with config_context(array_api_dispatch=True):
        xp, _, device = get_namespace_and_device(torch.asarray(X))
        there = move_estimator_to(staying, xp, device)
        ops = there._fit_state.network.ops
        assert isinstance(ops, TorchOps) and ops is array_ops(torch.asarray(X))
        assert all(layer.ops is ops for layer in there._fit_state.network.layers)
        back = move_estimator_to(there, np, "cpu")
    assert all(layer.ops is array_ops(X) for layer in back._fit_state.network.layers)
    staying.fit(X, y)
    back.fit(X, y)
    for a, b in zip(staying._fit_state.network.params + staying.feedback_,
                    back._fit_state.network.params + back.feedback_):
        np.testing.assert_array_equal(a, b)
    assert back.loss_curve_ == staying.loss_curve_


class _DFAWithArray(DirectFeedbackAlignment):
    """A user's rule that holds an array of its own (issue 28, failure 3)."""

    def __init__(self, conv_feedback="map", w=None):
        super().__init__(conv_feedback)
        self.w = np.ones(3) if w is None else w


@pytest.mark.parametrize("to", ["torch", "array_api_strict"])
def test_a_fit_on_another_namespace_leaves_the_rule_object_unchanged(to):
    rule = _DFAWithArray()
    X, y = _data()
    convert = torch.asarray if to == "torch" else xps.asarray
    with config_context(array_api_dispatch=True):
        est = DFAClassifier(rule=rule, **SMALL).fit(convert(X), convert(y))
        moved = move_estimator_to(est, np, "cpu")
    for holder in (rule, est.rule, moved.rule):
        assert type(holder.w) is np.ndarray
    assert_allclose(rule.w, np.ones(3))
