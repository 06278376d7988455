"""Persistence: pickle, joblib and skops round trips of every estimator.

A loaded model predicts exactly what the saved one did, keeps its dtype
(float32 stays float32) and continues training with ``warm_start`` exactly as
the original would.

Safe loading with skops (``pip install skops``): a skdfa model needs
only skdfa's own types to be trusted, so a file is loaded with ::

    untrusted = skops.io.get_untrusted_types(file=path)
    # Review the list: anything outside skdfa means the file is not a plain
    # skdfa model; refuse it.
    assert all(name.startswith("skdfa.") for name in untrusted)
    model = skops.io.load(path, trusted=untrusted)
"""

import importlib
import inspect
import pickle
import pkgutil

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone

import skdfa
from skdfa._array_ops import array_ops

from ._estimators import assert_bit_identical, tiny, tiny_instances

sio = pytest.importorskip("skops.io")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

INSTANCES = tiny_instances()
METHODS = ["predict", "predict_proba", "decision_function", "transform"]


def _skdfa_types():
    """Dotted names of every class defined in skdfa's private modules."""
    names = []
    for info in pkgutil.iter_modules(skdfa.__path__, "skdfa."):
        private = info.name.startswith("skdfa._") and not info.name.startswith("skdfa.__")
        if info.ispkg or not private:
            continue
        module = importlib.import_module(info.name)
        names += [
            f"{obj.__module__}.{obj.__qualname__}"
            for obj in vars(module).values()
            if inspect.isclass(obj) and obj.__module__ == module.__name__
        ]
    return sorted(names)


SKDFA_TYPES = _skdfa_types()


def _data(dtype=np.float64):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 5).astype(dtype)
    return X, np.arange(40) % 3


def _outputs(estimator, X):
    return {m: getattr(estimator, m)(X) for m in METHODS if hasattr(estimator, m)}


def _pickle(estimator, tmp_path):
    return pickle.loads(pickle.dumps(estimator))


def _joblib(estimator, tmp_path):
    joblib.dump(estimator, tmp_path / "model.joblib")
    return joblib.load(tmp_path / "model.joblib")


def _skops(estimator, tmp_path):
    path = tmp_path / "model.skops"
    sio.dump(estimator, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) <= set(SKDFA_TYPES), untrusted
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    return sio.load(path, trusted=SKDFA_TYPES)


ROUND_TRIPS = [_pickle, _joblib, _skops]


@pytest.mark.parametrize("round_trip", ROUND_TRIPS, ids=lambda f: f.__name__[1:])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "estimator", [est for _, est in INSTANCES], ids=[name for name, _ in INSTANCES]
)
def test_round_trip_predicts_identically(estimator, dtype, round_trip, tmp_path):
    X, y = _data(dtype)
    fitted = clone(estimator).fit(X, y)
    loaded = round_trip(fitted, tmp_path)
    assert type(loaded) is type(fitted)
    assert_bit_identical(loaded, fitted)
    expected = _outputs(fitted, X)
    assert set(expected) >= {"predict", "transform"}
    for method, output in _outputs(loaded, X).items():
        assert output.dtype == expected[method].dtype
        assert_array_equal(output, expected[method])
    assert loaded.transform(X).dtype == dtype


@pytest.mark.parametrize("round_trip", ROUND_TRIPS, ids=lambda f: f.__name__[1:])
@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
def test_loaded_model_continues_training_identically(solver, round_trip, tmp_path):
    # Float32 too: the optimizer's state and scratch buffers keep the dtype.
    X, y = _data(np.float32)
    params = dict(solver=solver, warm_start=True, tol=0, n_iter_no_change=100)
    original = tiny(skdfa.DFAClassifier, **params).fit(X, y)
    loaded = round_trip(original, tmp_path)
    original.fit(X, y)
    loaded.fit(X, y)
    assert_bit_identical(loaded, original)
    assert loaded.coefs_[0].dtype == np.float32
    assert loaded.loss_curve_ == original.loss_curve_


def test_skops_trusted_list_names_only_skdfa_types():
    classes = {name.split(".")[-1] for name in SKDFA_TYPES}
    assert {"DFAClassifier", "DenseLayer", "Network", "AdamOptimizer"} <= classes
    assert all(name.startswith("skdfa._") for name in SKDFA_TYPES)


@pytest.mark.parametrize("round_trip", ROUND_TRIPS, ids=lambda f: f.__name__[1:])
def test_loaded_network_hands_its_layers_the_ops_of_its_arrays(round_trip, tmp_path):
    # The array operations hold modules: they are not saved, but looked up
    # once on load and handed to every layer again.
    X, y = _data()
    fitted = tiny(skdfa.ConvDFAClassifier).fit(X, y)
    loaded = round_trip(fitted, tmp_path)
    ops = loaded._fit_state.network.ops
    assert ops is array_ops(X)
    assert all(layer.ops is ops for layer in loaded._fit_state.network.layers)
