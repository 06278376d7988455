"""scikit-learn's MLP behaviours, written as tests of skdfa.

Each test is a behaviour of MLPClassifier / MLPRegressor that scikit-learn's
own ``neural_network/tests/test_mlp.py`` checks, run here on skdfa's
estimators and, where the two can be compared, against scikit-learn itself:
``n_iter_no_change=np.inf``, fits on a single class, ``solver="lbfgs"``,
``loss="poisson"`` and early stopping with a class of one sample.
"""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import is_classifier
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.neural_network._base import poisson_loss
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_classifiers_one_label

from skdfa import DFAClassifier, DFARegressor, RDClassifier
from skdfa._base import OUTPUTS
from skdfa._lbfgs import _Objective

from ._estimators import NETWORKS, tiny


def _digits(n_class, n=120):
    X, y = load_digits(n_class=n_class, return_X_y=True)
    return X[:n] / 16, y[:n]


def _counts(n=80, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(0, 1, size=(n, 3))
    y = rng.poisson(np.exp(X @ [1.0, -0.5, 0.3] + 0.5))
    return X, y.astype(float)


# -- n_iter_no_change=np.inf ------------------------------------------------------------


@pytest.mark.parametrize("Estimator", NETWORKS, ids=lambda cls: cls.__name__)
def test_infinite_n_iter_no_change_never_stops_on_tol(Estimator):
    X, y = _digits(3, 60)
    # tol=1e9: no epoch ever improves enough, so a finite patience stops early.
    settings = dict(hidden_layer_sizes=(4,), tol=1e9, max_iter=7, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        patient = tiny(Estimator, n_iter_no_change=np.inf, **settings).fit(X, y)
        impatient = tiny(Estimator, n_iter_no_change=2, **settings).fit(X, y)
    assert patient.n_iter_ == 7
    # The first epoch sets the best loss; the next 3 fail to improve on it by tol.
    assert impatient.n_iter_ == 4
    with pytest.raises(InvalidParameterError, match="n_iter_no_change"):
        tiny(Estimator, n_iter_no_change=-np.inf, **settings).fit(X, y)


def test_infinite_n_iter_no_change_matches_mlpclassifier():
    X, y = _digits(3, 60)
    settings = dict(hidden_layer_sizes=(4,), tol=1e9, max_iter=5, n_iter_no_change=np.inf,
                    activation="relu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = MLPClassifier(**settings).fit(X, y)
        ours = DFAClassifier(rule="bp", **settings).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ == 5
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-10)


# -- a single class ------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", [DFAClassifier, RDClassifier])
@pytest.mark.parametrize("label", [3, "only"])
def test_single_class_fits_and_predicts_that_class(Estimator, label):
    rng = np.random.RandomState(0)
    X, X_test = rng.uniform(size=(10, 3)), rng.uniform(size=(5, 3))
    y = np.full(10, label, dtype=object if isinstance(label, str) else int)
    ref = MLPClassifier(max_iter=5).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = tiny(Estimator, hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    assert_array_equal(clf.classes_, ref.classes_)
    assert_array_equal(clf.predict(X_test), ref.predict(X_test))
    assert_array_equal(clf.predict(X_test), np.full(5, label, dtype=y.dtype))
    # One column per class (MLPClassifier returns two, [1 - p, p], for its one class).
    assert_array_equal(clf.predict_proba(X_test), np.ones((5, 1)))
    assert_array_equal(clf.predict_log_proba(X_test), np.zeros((5, 1)))
    assert clf.score(X_test, np.full(5, label)) == 1.0
    assert clf.n_outputs_ == ref.n_outputs_ == 1
    assert clf.out_activation_ == ref.out_activation_ == "logistic"
    check_classifiers_one_label(Estimator.__name__, tiny(Estimator, max_iter=3))


# -- solver="lbfgs" ------------------------------------------------------------------------


LBFGS_PROBLEMS = {
    "multiclass": (DFAClassifier, MLPClassifier, _digits(3)),
    "binary": (DFAClassifier, MLPClassifier, _digits(2)),
    "regression": (
        DFARegressor,
        MLPRegressor,
        make_regression(n_samples=100, n_features=6, noise=10.0, random_state=7),
    ),
}


@pytest.mark.parametrize("problem", sorted(LBFGS_PROBLEMS))
@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_follows_mlp_lbfgs_from_the_same_weights(problem, activation, weighted):
    Ours, Theirs, (X, y) = LBFGS_PROBLEMS[problem]
    if Ours is DFARegressor:
        y = (y - y.mean()) / y.std()
    weights = np.random.RandomState(1).uniform(0, 2, size=len(y)) if weighted else None
    # The same seed draws the same initial weights in both, and both take the
    # same L-BFGS steps. (Over longer runs, rounding differences in the loss
    # can tip a line search: the paths may part, see the next test.)
    settings = dict(solver="lbfgs", hidden_layer_sizes=(7,), activation=activation,
                    alpha=1e-2, max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = Theirs(**settings).fit(X, y, sample_weight=weights)
        ours = Ours(rule="bp", **settings).fit(X, y, sample_weight=weights)
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.loss_, ref.loss_, rtol=1e-7)
    for mine, theirs in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert_allclose(mine, theirs, rtol=1e-5, atol=1e-8)
    # The fitted attributes MLPClassifier sets after L-BFGS, and no others.
    for name in ("loss_curve_", "best_loss_", "validation_scores_"):
        assert not hasattr(ours, name) and not hasattr(ref, name)


@pytest.mark.parametrize("problem", sorted(LBFGS_PROBLEMS))
def test_lbfgs_converges_where_mlp_lbfgs_does(problem):
    Ours, Theirs, (X, y) = LBFGS_PROBLEMS[problem]
    if Ours is DFARegressor:
        y = (y - y.mean()) / y.std()
    settings = dict(solver="lbfgs", hidden_layer_sizes=(7,), activation="logistic",
                    alpha=1e-2, max_iter=500, random_state=0)
    ref = Theirs(**settings).fit(X, y)
    ours = Ours(rule="bp", **settings).fit(X, y)
    # Measured: losses within 3.1% of each other, training scores within 1e-4.
    assert_allclose(ours.loss_, ref.loss_, rtol=0.05)
    assert_allclose(ours.score(X, y), ref.score(X, y), atol=1e-3)


def _finite_difference_check(objective, x, eps=1e-6, n_checked=40):
    value, grad = objective(x.copy())
    rng = np.random.RandomState(0)
    for i in rng.choice(x.size, size=min(n_checked, x.size), replace=False):
        step = np.zeros_like(x)
        step[i] = eps
        numeric = (objective(x + step)[0] - objective(x - step)[0]) / (2 * eps)
        assert_allclose(grad[i], numeric, rtol=1e-5, atol=1e-8)
    objective(x)  # the network back at x
    return value, grad


@pytest.mark.parametrize(
    "estimator, n_outputs",
    [
        (DFAClassifier(rule="bp", hidden_layer_sizes=(5, 4), activation="tanh"), 3),
        (DFAClassifier(rule="bp", hidden_layer_sizes=(5,), activation="logistic"), 2),
        (DFARegressor(rule="bp", hidden_layer_sizes=(5,), activation="relu"), 2),
        (DFARegressor(rule="bp", loss="poisson", hidden_layer_sizes=(5,)), 1),
        (RDClassifier(rule="bp", hidden_layer_sizes=(6,)), 3),
        (RDClassifier(rule="bp", hidden_layer_sizes=(6,), output_layer="dense"), 3),
    ],
    ids=["softmax", "logistic", "squared-2-outputs", "poisson", "rd", "rd-dense-output"],
)
def test_lbfgs_gradient_is_the_loss_gradient(estimator, n_outputs):
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(30, 4))
    if is_classifier(estimator):
        y = np.arange(30) % n_outputs
    elif estimator.loss == "poisson":
        y = rng.poisson(2.0, size=30).astype(float)
    else:
        y = rng.standard_normal((30, n_outputs))
    weights = rng.uniform(0, 2, size=30)
    est = estimator.set_params(alpha=0.3, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    Y = np.asarray(est._label_binarizer.transform(y) if hasattr(est, "classes_") else y,
                   dtype=float).reshape(30, -1)
    objective = _Objective(est._fit_state.network, X, Y, weights, est.alpha)
    x = objective.pack()
    value, _ = _finite_difference_check(objective, x)
    # The value is the weighted data loss plus the L2 penalty, computed here
    # from the network's outputs.
    raw = est.transform(X)
    if est.out_activation_ == "softmax":
        log_p = raw - np.log(np.exp(raw).sum(axis=1, keepdims=True))
        per_sample = -(Y * log_p).sum(axis=1)
    elif est.out_activation_ == "logistic":
        p = 1 / (1 + np.exp(-raw))
        per_sample = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).sum(axis=1)
    elif est.out_activation_ == "exp":
        mu = np.exp(raw)
        per_sample = (np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1) / mu), 0) - Y + mu).sum(1)
    else:
        # The sum over outputs, whose gradient training follows.
        per_sample = 0.5 * ((raw - Y) ** 2).sum(axis=1)
    squares = sum((p**2).sum() for p in est._fit_state.network.regularized_params)
    expected = (per_sample @ weights + 0.5 * est.alpha * squares) / weights.sum()
    assert_allclose(value, expected, rtol=1e-10)


@pytest.mark.parametrize("rule", ["dfa", "fa", "drtp", "sdfa", "usf", "frsf", "brsf", "kp", "dkp"])
@pytest.mark.parametrize("Estimator", [DFAClassifier, DFARegressor])
def test_lbfgs_refuses_rules_that_follow_no_gradient(rule, Estimator):
    X, y = _digits(2, 30)
    est = Estimator(rule=rule, solver="lbfgs")
    with pytest.raises(ValueError, match=re.escape(f"cannot train rule={rule!r}")) as info:
        est.fit(X, y)
    message = str(info.value)
    assert "gradient" in message and "rule='bp'" in message and "solver='adam'" in message
    assert not hasattr(est, "coefs_")


def test_lbfgs_refuses_dropout():
    X, y = _digits(2, 30)
    with pytest.raises(ValueError, match="dropout makes the loss random"):
        DFAClassifier(rule="bp", solver="lbfgs", dropout=0.2).fit(X, y)


@pytest.mark.parametrize("Ours, Theirs", [(DFAClassifier, MLPClassifier),
                                          (DFARegressor, MLPRegressor)])
def test_lbfgs_stops_on_max_fun_and_max_iter_with_a_warning(Ours, Theirs):
    X, y = _digits(3)
    for limits in (dict(max_fun=10, max_iter=150), dict(max_iter=3)):
        settings = dict(solver="lbfgs", hidden_layer_sizes=(10,), activation="relu",
                        random_state=0, **limits)
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
            ours = Ours(rule="bp", **settings).fit(X, y)
        with pytest.warns(ConvergenceWarning):
            ref = Theirs(**settings).fit(X, y)
        assert ours.n_iter_ == ref.n_iter_ <= limits.get("max_iter")
        assert_allclose(ours.loss_, ref.loss_, rtol=1e-7)


def test_lbfgs_tol_is_the_gradient_tolerance():
    X, y = _digits(3)
    n_iter = {}
    for tol in (3e-2, 1e-3):
        settings = dict(solver="lbfgs", hidden_layer_sizes=(10,), activation="relu", tol=tol,
                        max_iter=500, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)  # converged, no warning
            ours = DFAClassifier(rule="bp", **settings).fit(X, y)
        n_iter[tol] = ours.n_iter_
        assert ours.n_iter_ == MLPClassifier(**settings).fit(X, y).n_iter_
    assert n_iter[3e-2] < n_iter[1e-3]  # measured: 8 and 12


def test_lbfgs_has_no_partial_fit_and_warm_starts_into_adam():
    X, y = _digits(3)
    clf = DFAClassifier(rule="bp", solver="lbfgs", hidden_layer_sizes=(8,), max_iter=20,
                        random_state=0, warm_start=True)
    assert not hasattr(clf, "partial_fit")
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        lbfgs_loss = clf.loss_
        # Adam starts from the L-BFGS weights: its first epoch starts near there.
        clf.set_params(solver="adam", learning_rate_init=1e-4, max_iter=2).fit(X, y)
    assert len(clf.loss_curve_) == 2
    assert clf.loss_curve_[0] < 2 * lbfgs_loss + 0.05
    assert hasattr(clf, "partial_fit")


def test_lbfgs_keeps_float32_and_trains_rd_layers():
    X, y = _digits(3)
    clf = RDClassifier(rule="bp", solver="lbfgs", hidden_layer_sizes=(32,), max_iter=60,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X.astype(np.float32), y)
    assert clf.intercepts_[0].dtype == np.float32
    assert clf.score(X, y) == 1.0


def test_lbfgs_refuses_a_non_finite_loss_and_keeps_finite_weights():
    # sklearn's test_nonfinite_params, with L-BFGS and an activation that
    # does not saturate (MLPRegressor fits it, with a NaN loss_).
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    reg = DFARegressor(rule="bp", solver="lbfgs", activation="relu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="Solver ended on a non-finite loss"):
            reg.fit(X, y)
    assert all(np.isfinite(p).all() for p in reg.coefs_ + reg.intercepts_)


# -- loss="poisson" ---------------------------------------------------------------------


def test_half_poisson_deviance_and_its_gradient_by_hand():
    rng = np.random.RandomState(0)
    A = rng.uniform(-2, 2, size=(6, 2))
    Y = rng.poisson(1.0, size=(6, 2)).astype(float)
    Y[0] = 0.0  # y log y is 0 at y = 0
    error = np.empty_like(A)
    loss = OUTPUTS["exp"](A, Y, error, _numpy_ops())
    # 1/2 deviance = y log(y / mu) - y + mu, summed over the outputs.
    mu = np.exp(A)
    by_hand = (np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1) / mu), 0) - Y + mu).sum(axis=1)
    assert_allclose(loss, by_hand, rtol=1e-12)
    assert_allclose(loss.mean(), poisson_loss(Y, mu), rtol=1e-12)  # sklearn's
    assert_allclose(error, mu - Y, rtol=1e-12)  # d loss / d a


def _numpy_ops():
    from skdfa._array_ops import array_ops

    return array_ops(np.zeros(1))


@pytest.mark.parametrize("solver", ["lbfgs", "adam", "sgd"])
def test_poisson_follows_mlpregressor(solver):
    X, y = _counts()
    settings = dict(loss="poisson", solver=solver, hidden_layer_sizes=(6,), activation="relu",
                    max_iter=30, random_state=0, learning_rate_init=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = MLPRegressor(**settings).fit(X, y)
        ours = DFARegressor(rule="bp", **settings).fit(X, y)
    assert ours.out_activation_ == ref.out_activation_ == "exp"
    assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-6)
    assert_allclose(ours.predict(X), np.exp(ours.transform(X)).ravel(), rtol=1e-12)
    if solver != "lbfgs":
        assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-8)


def test_poisson_without_hidden_nonlinearity_is_the_poisson_glm():
    # sklearn's test_mlp_vs_poisson_glm_equivalent: one identity hidden unit
    # and an exp output are a log-linear model.
    rng = np.random.default_rng(42)
    X = np.linspace(0, 1, 100)
    y = rng.poisson(np.exp(X + 1))
    X = X.reshape(-1, 1)
    glm = PoissonRegressor(alpha=0, tol=1e-7).fit(X, y)
    settings = dict(hidden_layer_sizes=(1,), activation="identity", alpha=0, solver="lbfgs",
                    tol=1e-7, random_state=np.random.RandomState(43), rule="bp")
    mlp = DFARegressor(loss="poisson", **settings).fit(X, y)
    assert_allclose(mlp.predict(X), glm.predict(X), rtol=1e-4)
    squared = DFARegressor(loss="squared_error", **settings).fit(X, y)
    assert not np.allclose(squared.predict(X), glm.predict(X), rtol=1e-4)


def test_poisson_needs_non_negative_targets_and_a_fixed_loss():
    X, y = _counts()
    y[[3, 7]] = -1.0
    with pytest.raises(ValueError, match=r"y has 2 negative value\(s\)"):
        DFARegressor(loss="poisson").fit(X, y)
    with pytest.raises(InvalidParameterError, match="loss"):
        DFARegressor(loss="gamma").fit(X, y)
    reg = DFARegressor(loss="poisson", max_iter=2, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, np.abs(y))
    with pytest.raises(ValueError, match="loss='poisson'"):
        reg.set_params(loss="squared_error").fit(X, y)


def test_poisson_early_stopping_scores_the_predictions(monkeypatch):
    import skdfa._training

    split, validation_rows = skdfa._training.train_test_split, []

    def recording_split(*args, **kwargs):
        train, val = split(*args, **kwargs)
        validation_rows.append(val)
        return train, val

    monkeypatch.setattr(skdfa._training, "train_test_split", recording_split)
    X, y = _counts(200)
    reg = DFARegressor(loss="poisson", hidden_layer_sizes=(8,), early_stopping=True,
                       max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    # One epoch, whose weights early stopping keeps: its score is R^2 of predict.
    rows = validation_rows[0]
    assert_allclose(reg.validation_scores_, [r2_score(y[rows], reg.predict(X[rows]))],
                    rtol=1e-12)


# -- early stopping with a class of one sample ------------------------------------------


@pytest.mark.parametrize(
    "y, lonely",
    [
        ([0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 2], "[2]"),
        (["a"] * 8 + ["b"] * 3 + ["c"], "['c']"),
        ([True] * 11 + [False], "[False]"),
    ],
)
def test_early_stopping_names_a_class_with_one_sample(y, lonely):
    X = np.random.RandomState(0).uniform(size=(len(y), 3))
    if len(set(y)) == 2:
        # MLPClassifier refuses it too (it stratifies binary targets only).
        with pytest.raises(ValueError, match="least populated class"):
            MLPClassifier(early_stopping=True).fit(X, y)
    with pytest.raises(ValueError, match="least populated classes") as info:
        DFAClassifier(early_stopping=True).fit(X, y)
    message = str(info.value)
    assert f"Classes with too few members are: {lonely}" in message
    assert "early_stopping=False" in message
