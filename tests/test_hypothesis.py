"""Property-based tests (hypothesis) over every public estimator.

Each drawn problem (shapes from one sample to more features than samples,
every input dtype, tiny, huge and constant values, duplicated rows, sparse
matrices and DataFrames, integer, negative, non-contiguous, string and
multilabel targets) either fits and predicts finite, correctly shaped and
typed outputs with labels from ``classes_``, or raises a ValueError or
TypeError raised on purpose by skdfa or scikit-learn, never one from inside
numpy or scipy. Ordinary data (two classes or more, moderate values) must fit.
The examples tried are counted in pytest's terminal summary (``conftest.py``).
"""

import os
import traceback
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone, is_classifier
from sklearn.utils import get_tags

from skdfa._rules import RULES

from ._estimators import rules_of, tiny_instances, trained_arrays

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::sklearn.exceptions.DataConversionWarning",
    "ignore:Got `batch_size`:UserWarning",
    "ignore:The number of unique classes:UserWarning",
    # Overflow while a network on 1e300-sized inputs diverges (which is then
    # reported as a ValueError).
    "ignore::RuntimeWarning",
)

INSTANCES = tiny_instances()
# 5 instances x 60 examples: a few hundred fits in about 20 s.
EXAMPLES_PER_ESTIMATOR = 60

_tried = Counter()


@pytest.fixture(autouse=True)
def _record_examples_tried(record_property):
    _tried.clear()
    yield
    record_property("hypothesis_examples", _tried["examples"])
    record_property("hypothesis_clear_errors", _tried["clear errors"])


# Magnitudes of the features, per dtype: "huge" and "tiny" sit near the ends
# of the dtype's range (denormals included for "tiny").
FLOAT_MAGNITUDES = {
    "float64": {"unit": 1.0, "tiny": 1e-300, "huge": 1e300},
    "float32": {"unit": 1.0, "tiny": 1e-40, "huge": 1e37},
}
INT_RANGES = {
    "int64": {"unit": 10, "tiny": 1, "huge": 2**62},
    "uint8": {"unit": 10, "tiny": 1, "huge": 255},
}


def _values(rng, shape, dtype, magnitude):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in FLOAT_MAGNITUDES:
        scale = FLOAT_MAGNITUDES[dtype][magnitude]
        return (rng.standard_normal(shape) * scale).astype(dtype)
    high = INT_RANGES[dtype][magnitude]
    low = 0 if dtype == "uint8" else -high
    return rng.integers(low, high, size=shape, endpoint=True, dtype=dtype)


@st.composite
def features(draw):
    """``(X, info)``: X in one of the accepted containers."""
    n_samples = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 30))
    dtype = draw(st.sampled_from(["float64", "float32", "int64", "uint8", "bool"]))
    magnitude = draw(st.sampled_from(["unit", "unit", "tiny", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = _values(rng, (n_samples, n_features), dtype, magnitude)
    constant = draw(st.lists(st.integers(0, n_features - 1), max_size=n_features))
    X[:, constant] = X[0, constant]
    n_duplicated = draw(st.integers(0, n_samples // 2))
    X[n_samples - n_duplicated :] = X[:n_duplicated]
    container = draw(st.sampled_from(["dense", "csr", "csc", "coo", "dataframe"]))
    if container in ("csr", "csc", "coo"):
        X[rng.random(X.shape) < draw(st.sampled_from([0.0, 0.5, 1.0]))] = 0
    # Injected faults: a missing or infinite value must be refused.
    corrupt = None
    if dtype in FLOAT_MAGNITUDES:
        corrupt = draw(st.sampled_from([None] * 8 + [np.nan, np.inf]))
    if corrupt is not None:
        X[draw(st.integers(0, n_samples - 1)), draw(st.integers(0, n_features - 1))] = corrupt
    if container in ("csr", "csc", "coo"):
        X = getattr(sp, f"{container}_matrix")(X)
    elif container == "dataframe":
        X = pd.DataFrame(X, columns=[f"feature_{j}" for j in range(n_features)])
    # Unscaled inputs (huge values, integers up to 255) may make SGD diverge,
    # which must then be reported as a clear error.
    unscaled = magnitude == "huge" or dtype in INT_RANGES
    info = {"dtype": dtype, "may_fail": unscaled, "must_fail": corrupt is not None, "rng": rng}
    return X, info


def _class_labels(draw, rng, n_samples, multilabel):
    """Targets with every class present; ``(y, n_classes)``."""
    if multilabel:
        n_labels = draw(st.integers(2, 5))
        return rng.integers(0, 2, size=(n_samples, n_labels)), n_labels
    n_classes = draw(st.one_of(st.just(2), st.integers(1, min(n_samples, 30))))
    n_classes = min(n_classes, n_samples)
    index = rng.permutation(np.arange(n_samples) % n_classes)
    kind = draw(st.sampled_from(["int", "negative", "non-contiguous", "str", "float"]))
    if kind == "int":
        return index, n_classes
    if kind == "negative":
        return -index - 1, n_classes
    if kind == "non-contiguous":
        return index * 7 - 50, n_classes
    if kind == "float":
        return index * 2.0, n_classes
    return np.array([f"class_{i}" for i in index]), n_classes


def _regression_targets(draw, rng, n_samples):
    n_targets = draw(st.sampled_from([0, 1, 3]))
    shape = (n_samples,) if n_targets == 0 else (n_samples, n_targets)
    exponent = draw(st.sampled_from([0, 0, -300, 300]))
    return rng.standard_normal(shape) * 10.0**exponent, exponent == 300


# Hyper-parameters drawn for every estimator that has them (directly, or
# through its learner as ``estimator__<name>``).
# The rule is drawn among those the estimator supports (``_rules_for``).
HYPER_PARAMETERS = {
    "activation": st.sampled_from(["tanh", "relu", "logistic", "identity"]),
    "solver": st.sampled_from(["adam", "sgd", "rmsprop"]),
    "batch_size": st.sampled_from(["auto", 1, 7]),
    "early_stopping": st.sampled_from([False, False, False, True]),
}


def _rules_for(estimator, key):
    """Every rule that ``estimator`` (or, for ``estimator__rule``, its
    learner) supports; StackingDFA's ``vary="feedback"`` needs random feedback."""
    if key == "rule":
        return rules_of(type(estimator))
    rules = rules_of(type(estimator.estimator))
    if estimator.vary == "feedback":
        rules = [rule for rule in rules if RULES[rule].random_feedback]
    return rules


def _draw_params(draw, estimator):
    available = estimator.get_params()
    params = {}
    for key in ("rule", "estimator__rule"):
        if key in available:
            params[key] = draw(st.sampled_from(_rules_for(estimator, key)))
    for name, strategy in HYPER_PARAMETERS.items():
        for key in (name, f"estimator__{name}"):
            if key in available:
                params[key] = draw(strategy)
    return params


@st.composite
def problems(draw, estimator):
    """An unfitted estimator and a (X, y) problem for it."""
    X, info = draw(features())
    estimator = clone(estimator).set_params(**_draw_params(draw, estimator))
    n_samples = X.shape[0]
    rng = info["rng"]
    if is_classifier(estimator):
        multilabel = draw(st.sampled_from([False, False, True]))
        y, n_classes = _class_labels(draw, rng, n_samples, multilabel)
        supported = get_tags(estimator).classifier_tags.multi_label
        info["multilabel"] = multilabel
        # A single class fits, as in MLPClassifier.
        info["must_fail"] |= multilabel and not supported
    else:
        y, huge_targets = _regression_targets(draw, rng, n_samples)
        info["multilabel"] = False
        info["may_fail"] |= huge_targets
    # A validation split of a tiny data set may be impossible.
    info["may_fail"] |= any(
        value is True for key, value in estimator.get_params().items()
        if key.endswith("early_stopping")
    )
    return estimator, X, y, info


_LIBRARY_DIRS = tuple(os.path.dirname(m.__file__) for m in (np, scipy))


def _assert_deliberate_error(exc):
    """A clear error: ValueError/TypeError with a message, raised by the
    library on purpose rather than by numpy or scipy internals."""
    assert isinstance(exc, (ValueError, TypeError)), repr(exc)
    assert str(exc), repr(exc)
    origin = traceback.extract_tb(exc.__traceback__)[-1].filename
    assert not origin.startswith(_LIBRARY_DIRS), f"{exc!r} raised inside {origin}"


def _check_outputs(estimator, X, y, info):
    n_samples = X.shape[0]
    float_dtype = np.float32 if info["dtype"] == "float32" else np.float64
    assert all(np.isfinite(p).all() for p in trained_arrays(estimator))
    if isinstance(X, pd.DataFrame):
        assert_array_equal(estimator.feature_names_in_, X.columns)

    if hasattr(estimator, "transform"):
        Xt = estimator.transform(X)
        assert Xt.shape[0] == n_samples and Xt.ndim == 2
        assert Xt.dtype == float_dtype
        assert np.isfinite(Xt).all()

    predictions = estimator.predict(X)
    if not is_classifier(estimator):
        # One output predicts a 1-D array, as in scikit-learn.
        single = y.ndim == 1 or y.shape[1] == 1
        assert predictions.shape == ((n_samples,) if single else y.shape)
        assert predictions.dtype == float_dtype
        assert np.isfinite(predictions).all()
        # A regressor predicts its identity outputs.
        assert_array_equal(predictions, estimator.transform(X).reshape(predictions.shape))
        return

    proba = estimator.predict_proba(X)
    assert np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    if info["multilabel"]:
        assert predictions.shape == y.shape
        assert set(np.unique(predictions)) <= {0, 1}
        assert proba.shape == y.shape
        # A label is predicted where its logistic output is positive.
        assert_array_equal(predictions, estimator.decision_function(X) > 0)
        return
    assert_array_equal(estimator.classes_, np.unique(y))
    assert predictions.shape == (n_samples,)
    assert predictions.dtype == estimator.classes_.dtype
    assert np.isin(predictions, estimator.classes_).all()
    assert proba.shape == (n_samples, len(estimator.classes_))
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-4)
    # The predicted class is the most probable one (where it is unique: the
    # rounding of a tie may pick either).
    top_two = np.sort(proba, axis=1)[:, -2:]
    unique = top_two[:, -1] > top_two[:, 0] if proba.shape[1] > 1 else np.ones(n_samples, bool)
    most_probable = estimator.classes_[np.argmax(proba, axis=1)]
    assert_array_equal(predictions[unique], most_probable[unique])
    if hasattr(estimator, "decision_function"):
        assert np.isfinite(estimator.decision_function(X)).all()


@pytest.mark.parametrize(
    "estimator", [est for _, est in INSTANCES], ids=[name for name, _ in INSTANCES]
)
def test_fit_predict_or_clear_error(estimator):
    # Derandomized by the profile that conftest.py loads.
    @settings(max_examples=EXAMPLES_PER_ESTIMATOR, deadline=None)
    @given(problem=problems(estimator))
    def check(problem):
        _tried["examples"] += 1
        model, X, y, info = problem
        try:
            model.fit(X, y)
        except (ValueError, TypeError) as exc:
            _assert_deliberate_error(exc)
            _tried["clear errors"] += 1
            assert info["must_fail"] or info["may_fail"], f"ordinary data failed: {exc!r}"
            return
        assert not info["must_fail"], "fit accepted invalid data"
        with warnings.catch_warnings():
            # A DataFrame fit then DataFrame predict must not lose the names.
            warnings.filterwarnings("error", message=".*feature names.*")
            _check_outputs(model, X, y, info)

    check()
