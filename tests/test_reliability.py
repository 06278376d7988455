"""Injected faults: divergence, KeyboardInterrupt, and memory under load.

A fitted model never holds non-finite weights: a diverging fit stops with a
clear error (or, with early stopping, keeps its best weights and warns), and
an interrupted fit keeps the last completed epoch, bit for bit, ready to
predict or to continue with ``warm_start`` exactly as if never interrupted.
Inference runs in chunks, so its memory does not grow with n_samples times the
hidden width.
"""

import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning

import skdfa._network
from skdfa import DFAClassifier, DFARegressor
from skdfa._optimizers import OPTIMIZERS

from ._estimators import NETWORKS, assert_bit_identical, tiny, trained_arrays

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # numpy's overflow warnings while a fit diverges, before skdfa reports it.
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]


def _data(n_samples=60, n_features=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n_samples, n_features)
    y_class = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    y_real = X @ rng.randn(n_features) * 10
    return X, y_class, y_real


def _fit_data(Estimator):
    X, y_class, y_real = _data()
    return X, (y_class if is_classifier(Estimator()) else y_real)


def _all_finite(estimator):
    """Weights and optimizer state (moments, velocities) are all finite."""
    arrays = trained_arrays(estimator)
    for name, state in vars(estimator._fit_state.optimizer).items():
        if isinstance(state, list) and name != "_scratch":
            arrays += state
    return all(np.isfinite(a).all() for a in arrays)


def _initial_first_layer(seed, n_in, n_out):
    """The first layer's Glorot draw for ``random_state=seed`` (tanh, relu)."""
    bound = np.sqrt(6 / (n_in + n_out))
    return np.random.RandomState(seed).uniform(-bound, bound, (n_in, n_out))


# -- divergence -----------------------------------------------------------------

# SGD at this rate on ReLU units blows up in epoch 6 (the loss overflows).
DIVERGING = dict(
    hidden_layer_sizes=(8,),
    activation="relu",
    solver="sgd",
    learning_rate_init=0.05,
    batch_size=10,
    max_iter=50,
    random_state=0,
)


def _diverging_problem():
    X, _, y = _data(n_samples=100)
    return X, y


def test_divergence_raises_and_keeps_last_finite_epoch():
    X, y = _diverging_problem()
    reg = DFARegressor(**DIVERGING)
    with pytest.raises(ValueError, match=r"diverged in epoch 6.*learning_rate_init"):
        reg.fit(X, y)
    assert reg.n_iter_ == 5
    assert _all_finite(reg)
    assert np.isfinite(reg.predict(X)).all()
    # The weights are those of a fit that stopped before the bad epoch.
    assert_bit_identical(reg, DFARegressor(**{**DIVERGING, "max_iter": 5}).fit(X, y))


def test_divergence_in_first_epoch_keeps_initial_weights():
    X, y = _diverging_problem()
    reg = DFARegressor(**{**DIVERGING, "learning_rate_init": 1.0, "activation": "identity"})
    with pytest.raises(ValueError, match="diverged in epoch 1"):
        reg.fit(X, y)
    assert reg.n_iter_ == 0
    assert _all_finite(reg)
    assert_array_equal(reg.coefs_[0], _initial_first_layer(0, X.shape[1], 8))


def test_divergence_with_early_stopping_keeps_best_weights():
    X, y = _diverging_problem()
    params = {**DIVERGING, "early_stopping": True, "n_iter_no_change": 50}
    reg = DFARegressor(**params)
    with pytest.warns(ConvergenceWarning, match="diverged in epoch 6"):
        reg.fit(X, y)
    assert reg.n_iter_ == 5
    assert _all_finite(reg)
    best_epoch = int(np.argmax(reg.validation_scores_)) + 1
    assert best_epoch < reg.n_iter_
    # The best epoch's weights, bit for bit: a fit stopped right after it.
    assert_bit_identical(reg, DFARegressor(**{**params, "max_iter": best_epoch}).fit(X, y))
    assert reg.score(X, y) > 0.5


def test_exploding_finite_loss_is_divergence():
    # DFA at this rate on ReLU units: the mean log-loss grows epoch after
    # epoch (370, 850, 1290, ... on this machine) long before it overflows.
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16
    params = dict(hidden_layer_sizes=(64, 64), activation="relu", solver="sgd", momentum=0.9,
                  rule="dfa", learning_rate_init=0.25, batch_size=16, max_iter=30, tol=0,
                  n_iter_no_change=100, random_state=0)
    clf = DFAClassifier(**params)
    with pytest.raises(ValueError, match=r"diverged in epoch (\d+): the loss became [\d.e+]+ "
                       r"\(over 1000 times the 2.3 of predicting every class as equally "
                       r"likely\).*weights of the epoch before") as exc:
        clf.fit(X, y)
    epoch = int(str(exc.value).split("epoch ")[1].split(":")[0])
    # Finite all along, under the bound until the epoch that crossed it.
    assert epoch > 1 and clf.n_iter_ == epoch - 1
    assert max(clf.loss_curve_) < 1000 * np.log(10)
    assert_bit_identical(clf, DFAClassifier(**{**params, "max_iter": epoch - 1}).fit(X, y))


@pytest.mark.parametrize("Estimator", NETWORKS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("solver", sorted(OPTIMIZERS))
def test_huge_learning_rate_never_leaves_non_finite_weights(Estimator, solver):
    X, y = _fit_data(Estimator)
    est = tiny(Estimator, activation="relu", solver=solver, learning_rate_init=1e4, max_iter=20)
    try:
        est.fit(X, y)
    except ValueError as exc:
        assert "diverged" in str(exc)
    assert _all_finite(est)
    assert np.isfinite(est.transform(X)).all()


# -- KeyboardInterrupt ----------------------------------------------------------

# 60 samples in batches of 20: 3 updates per epoch.
UPDATES_PER_EPOCH = 3
# tol=0 and a long patience: no early stop interferes with the comparisons;
# dropout and alignment tracking exercise every random stream and record.
RESUMABLE = dict(batch_size=20, tol=0, n_iter_no_change=100, dropout=0.2, track_alignment=2)


def _interrupt_at_update(monkeypatch, solver, update):
    """Make the ``update``-th optimizer step (counted from 1) raise
    KeyboardInterrupt, as Ctrl-C would in the middle of an epoch."""
    optimizer = OPTIMIZERS[solver]
    original = optimizer.update_params
    calls = []

    def update_params(self, params, grads, weight_decay=None):
        calls.append(None)
        if len(calls) == update:
            raise KeyboardInterrupt
        original(self, params, grads, weight_decay)

    monkeypatch.setattr(optimizer, "update_params", update_params)


def _assert_kept_two_epochs_and_resumes(est, X, y):
    """``est``, interrupted in a fit of 5 epochs, holds the fit of 2, and 3
    more epochs with ``warm_start`` give the uninterrupted fit; returns the
    uninterrupted fit."""
    two_epochs = clone(est).set_params(max_iter=2).fit(X, y)
    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == 2
    assert_bit_identical(est, two_epochs)
    assert_array_equal(est.predict(X), two_epochs.predict(X))
    est.set_params(warm_start=True, max_iter=3).fit(X, y)
    uninterrupted = clone(est).set_params(warm_start=False, max_iter=5).fit(X, y)
    assert_bit_identical(est, uninterrupted)
    assert est.loss_curve_ == uninterrupted.loss_curve_
    return uninterrupted


@pytest.mark.parametrize("Estimator", NETWORKS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("solver", sorted(OPTIMIZERS))
def test_keyboard_interrupt_keeps_last_completed_epoch(monkeypatch, Estimator, solver):
    X, y = _fit_data(Estimator)
    est = tiny(Estimator, solver=solver, max_iter=5, **RESUMABLE)
    # In the middle of epoch 3.
    _interrupt_at_update(monkeypatch, solver, 2 * UPDATES_PER_EPOCH + 2)
    with pytest.warns(UserWarning, match=r"interrupted.*last completed epoch \(2\)"):
        est.fit(X, y)
    monkeypatch.undo()
    # Resuming trains exactly as an uninterrupted fit.
    uninterrupted = _assert_kept_two_epochs_and_resumes(est, X, y)
    assert_array_equal(est.alignment_steps_, uninterrupted.alignment_steps_)
    assert_array_equal(est.alignment_, uninterrupted.alignment_)


@pytest.mark.parametrize("rule", ["brsf", "kp", "dkp"])
def test_keyboard_interrupt_restores_feedback_that_changes(monkeypatch, rule):
    # Redrawn (brsf) or learnt (kp, dkp) feedback is restored with the
    # weights, and so is its random stream: resuming is exact.
    X, y = _fit_data(DFAClassifier)
    est = tiny(DFAClassifier, rule=rule, hidden_layer_sizes=(4, 3), max_iter=5, **RESUMABLE)
    _interrupt_at_update(monkeypatch, "adam", 2 * UPDATES_PER_EPOCH + 2)
    with pytest.warns(UserWarning, match=r"last completed epoch \(2\)"):
        est.fit(X, y)
    monkeypatch.undo()
    uninterrupted = _assert_kept_two_epochs_and_resumes(est, X, y)
    assert_array_equal(est.weight_alignment_, uninterrupted.weight_alignment_)


def test_keyboard_interrupt_in_first_epoch_keeps_initial_weights(monkeypatch):
    X, y = _fit_data(DFAClassifier)
    est = tiny(DFAClassifier, max_iter=5, **RESUMABLE)
    _interrupt_at_update(monkeypatch, "adam", 2)
    with pytest.warns(UserWarning, match=r"last completed epoch \(0\)"):
        est.fit(X, y)
    monkeypatch.undo()
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    assert_array_equal(est.coefs_[0], _initial_first_layer(0, X.shape[1], 4))
    assert est.predict(X).shape == (X.shape[0],)


@pytest.mark.parametrize("copied", ["nothing", "the weights"])
def test_keyboard_interrupt_while_saving_an_epoch_keeps_that_epoch(monkeypatch, copied):
    # The snapshot after an epoch is copied into the previous one's arrays.
    # Interrupted in the middle of that copy, the fit keeps the epoch that
    # had ended and passed its checks, and resumes exactly, rather than
    # restoring a snapshot half written over.
    X, y = _fit_data(DFAClassifier)
    est = tiny(DFAClassifier, max_iter=5, **RESUMABLE)
    original = skdfa._training._copies
    calls = []

    def copies(*args):
        # Four copies per snapshot (weights, feedback, adam's m and v); the
        # third snapshot follows epoch 2.
        calls.append(None)
        if len(calls) == 9 + (copied == "the weights"):
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(skdfa._training, "_copies", copies)
    with pytest.warns(UserWarning, match=r"last completed epoch \(2\)"):
        est.fit(X, y)
    monkeypatch.undo()
    _assert_kept_two_epochs_and_resumes(est, X, y)


def test_partial_fit_reuses_its_snapshot_and_fit_releases_it():
    # A partial_fit call copies the state into the last call's snapshot
    # (fresh arrays cost page faults at every call); fit drops it at its
    # end, and pickles never carry it.
    import pickle

    X, y = _fit_data(DFAClassifier)
    est = tiny(DFAClassifier)
    est.partial_fit(X, y, classes=np.unique(y))
    saved = est._fit_state._snapshot
    first_arrays = saved.params + saved.optimizer.ms
    est.partial_fit(X, y)
    saved = est._fit_state._snapshot
    assert all(a is b for a, b in zip(saved.params + saved.optimizer.ms, first_arrays))
    # It holds the state at the start of the last call, not the live arrays.
    assert not any(a is b for a, b in zip(saved.params, est._fit_state.network.params))
    assert pickle.loads(pickle.dumps(est))._fit_state._snapshot is None
    est.fit(X, y)
    assert est._fit_state._snapshot is None


# -- memory under load ----------------------------------------------------------


@pytest.mark.parametrize("Estimator", NETWORKS, ids=lambda cls: cls.__name__)
def test_inference_memory_does_not_scale_with_samples_times_width(Estimator):
    # Few features keep the product cheap; the hidden width sets the memory.
    n_samples, n_features, width = 50_000, 20, 2000
    rng = np.random.RandomState(0)
    X = rng.randn(n_samples, n_features).astype(np.float32)
    y = rng.randint(3, size=n_samples) if is_classifier(Estimator()) else rng.randn(n_samples)
    est = tiny(Estimator, hidden_layer_sizes=(width,), max_iter=1).fit(X[:200], y[:200])
    # predict, transform and predict_proba share one chunked forward pass.
    tracemalloc.start()
    predictions = est.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert predictions.shape == (n_samples,)
    one_hidden_layer = n_samples * width * X.itemsize  # 400 MB
    # Chunks of about 4M values per hidden buffer (16 MB here; an RD layer
    # holds two): a small fraction of one full hidden layer.
    assert peak < one_hidden_layer / 8


@pytest.mark.parametrize("Estimator", NETWORKS, ids=lambda cls: cls.__name__)
def test_chunked_inference_equals_unchunked(monkeypatch, Estimator):
    X, y = _fit_data(Estimator)
    est = tiny(Estimator, hidden_layer_sizes=(8, 8), max_iter=5).fit(X, y)
    # Reference: the 60 rows in one chunk (the default chunk holds 500k rows
    # of 8 units).
    whole = est.transform(X)

    def outputs():
        extra = [est.predict_proba(X)] if is_classifier(est) else []
        return [est.transform(X), est.predict(X), *extra]

    unchunked = outputs()
    # 7 rows per chunk: 8 full chunks and a partial one.
    monkeypatch.setattr(skdfa._network, "_INFERENCE_CHUNK_VALUES", 7 * 8)
    # BLAS may round a 7-row product differently from a 60-row one.
    for got, want in zip(outputs(), unchunked):
        if got.dtype.kind == "f":
            assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        else:
            assert_array_equal(got, want)
    # Each row's outputs depend on that row alone.
    assert_allclose(est.transform(X[[37]]), whole[[37]], rtol=1e-12, atol=1e-14)
