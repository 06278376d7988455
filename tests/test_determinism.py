"""Determinism: the same seeds give the same model, bit for bit.

Across repeated fits, ``n_jobs``, alignment tracking on or off, and a pickle
round trip in the middle of training (``warm_start`` keeps the optimizer and
the random streams, so training resumes exactly where it stopped).
"""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone, is_classifier

from skdfa import DFAClassifier
from skdfa._rules import RULES

from ._estimators import NETWORKS, assert_bit_identical, rules_of, tiny, tiny_instances

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

INSTANCES = tiny_instances()
# No stopping criterion cuts a fit short, so fits of k + m epochs and of k then
# m epochs run the same updates.
NO_EARLY_STOP = dict(tol=0, n_iter_no_change=1000)


def _data(Estimator, n_samples=60, dtype=np.float64):
    rng = np.random.RandomState(0)
    X = rng.randn(n_samples, 5).astype(dtype)
    if is_classifier(Estimator()):
        return X, np.arange(n_samples) % 3
    return X, X @ rng.randn(5)


@pytest.mark.parametrize(
    "estimator", [est for _, est in INSTANCES], ids=[name for name, _ in INSTANCES]
)
def test_repeated_fits_are_bit_identical(estimator):
    X, y = _data(type(estimator))
    first = clone(estimator).fit(X, y)
    second = clone(estimator).fit(X, y)
    assert_bit_identical(first, second)
    # Refitting the same object starts over from the same seeds.
    assert_bit_identical(first.fit(X, y), second)


PARALLEL = [(name, est) for name, est in INSTANCES if "n_jobs" in est.get_params()]


@pytest.mark.parametrize(
    "estimator", [est for _, est in PARALLEL], ids=[name for name, _ in PARALLEL]
)
def test_n_jobs_does_not_change_the_model(estimator):
    X, y = _data(type(estimator))
    serial = clone(estimator).set_params(n_jobs=1).fit(X, y)
    parallel = clone(estimator).set_params(n_jobs=2).fit(X, y)
    assert_bit_identical(serial, parallel)
    assert_array_equal(serial.transform(X), parallel.transform(X))


@pytest.mark.parametrize(
    "Estimator, rule",
    [(E, rule) for E in NETWORKS for rule in rules_of(E)],
    ids=lambda value: getattr(value, "__name__", value),
)
@pytest.mark.parametrize("dropout", [0.0, (0.1, 0.2)])
def test_alignment_tracking_does_not_change_training(Estimator, rule, dropout):
    X, y = _data(Estimator)
    params = dict(rule=rule, dropout=dropout, batch_size=20, hidden_layer_sizes=(4, 3))
    untracked = tiny(Estimator, track_alignment=False, **params).fit(X, y)
    tracked = tiny(Estimator, track_alignment=1, **params).fit(X, y)
    assert_bit_identical(untracked, tracked)
    assert untracked.loss_curve_ == tracked.loss_curve_
    # One record per update (3 epochs of 3 batches), one angle per hidden layer
    # (tiny's conv classifier has one convolution before them).
    n_hidden = 2 + len(tracked.get_params().get("conv_layers", ()))
    assert tracked.alignment_.shape == tracked.weight_alignment_.shape == (9, n_hidden)
    assert untracked.alignment_.shape == untracked.weight_alignment_.shape == (0, n_hidden)


@pytest.mark.parametrize("Estimator", NETWORKS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pickle_mid_training_resumes_identically(Estimator, solver, learning_rate, dtype):
    X, y = _data(Estimator, dtype=dtype)
    params = dict(solver=solver, learning_rate=learning_rate, dropout=0.1, **NO_EARLY_STOP)
    uninterrupted = tiny(Estimator, max_iter=5, **params).fit(X, y)

    first = tiny(Estimator, max_iter=3, warm_start=True, **params).fit(X, y)
    resumed = pickle.loads(pickle.dumps(first)).set_params(max_iter=2).fit(X, y)
    assert_bit_identical(resumed, uninterrupted)
    assert resumed.loss_curve_ == uninterrupted.loss_curve_
    assert resumed.t_ == uninterrupted.t_
    assert resumed.transform(X).dtype == dtype


@pytest.mark.parametrize("rule", ["brsf", "kp", "dkp"])
def test_feedback_that_changes_resumes_identically(rule):
    # Redrawn (brsf) or learnt (kp, dkp) feedback, its stream and its
    # optimizer state travel with a pickle, mid training.
    X, y = _data(DFAClassifier)
    params = dict(rule=rule, hidden_layer_sizes=(4, 3), batch_size=20, **NO_EARLY_STOP)
    uninterrupted = tiny(DFAClassifier, max_iter=5, **params).fit(X, y)
    first = tiny(DFAClassifier, max_iter=3, warm_start=True, **params).fit(X, y)
    resumed = pickle.loads(pickle.dumps(first)).set_params(max_iter=2).fit(X, y)
    assert_bit_identical(resumed, uninterrupted)
    assert not np.array_equal(first.feedback_[0], tiny(DFAClassifier, **params)
                              .set_params(max_iter=1).fit(X, y).feedback_[0])


@pytest.mark.parametrize("Estimator", NETWORKS, ids=lambda cls: cls.__name__)
def test_partial_fit_epochs_match_fit(Estimator):
    X, y = _data(Estimator)
    fitted = tiny(Estimator, max_iter=3, **NO_EARLY_STOP).fit(X, y)
    incremental = tiny(Estimator, **NO_EARLY_STOP)
    extra = {"classes": np.unique(y)} if is_classifier(incremental) else {}
    for _ in range(3):
        incremental.partial_fit(X, y, **extra)
    assert_bit_identical(incremental, fitted)
    assert incremental.loss_curve_ == fitted.loss_curve_
