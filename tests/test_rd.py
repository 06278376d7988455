"""The RD layer (exact local gradients, the DCT fast path) and RDClassifier."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.fft import dct
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_classifiers_train, parametrize_with_checks

import skdfa._layers
from skdfa import DFAClassifier, RDClassifier
from skdfa._base import OUTPUTS
from skdfa._layers import RD_MATRICES, RDLayer
from skdfa._network import Workspace, train_batch
from skdfa._rules import RULES

from ._estimators import rules_of

MATRICES = sorted(RD_MATRICES)
# The first four rules run the checks with both matrices; the newer rules RD
# layers support (sdfa, dkp) with the gaussian one, to keep the suite short.
ORIGINAL_RULES = ["bp", "dfa", "drtp", "fa"]

# Small nets with a high learning rate: check_classifiers_train's accuracy
# threshold is met in a few dozen epochs. 32 hidden units, not 16: from the
# check's 2 features an RD layer learns only 2 input scales, and with 16 units
# DRTP's loss first rises on the check's binary problem, so that the ``tol``
# criterion stops it before the output layer has caught up.
CHECK_INSTANCES = [
    RDClassifier(
        hidden_layer_sizes=(32,),
        rule=rule,
        rd_matrix=matrix,
        learning_rate_init=0.05,
        max_iter=30,
        random_state=0,
    )
    for rule, matrices in [(rule, MATRICES) for rule in ORIGINAL_RULES]
    + [(rule, ["gaussian"]) for rule in sorted(set(rules_of(RDClassifier)) - set(ORIGINAL_RULES))]
    for matrix in matrices
]


def test_check_instances_cover_every_rule_and_matrix():
    covered = {(est.rule, est.rd_matrix) for est in CHECK_INSTANCES}
    assert {rule for rule, _ in covered} == set(rules_of(RDClassifier))
    assert covered >= {(r, m) for r in ORIGINAL_RULES for m in RD_MATRICES}


@pytest.mark.parametrize("rule", sorted(set(RULES) - set(rules_of(RDClassifier))))
def test_rules_needing_dense_weights_name_themselves(rule):
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match=f"rule='{rule}' builds its feedback from dense"):
        RDClassifier((8,), rule=rule, max_iter=1).fit(X[:50], y[:50])
    # No hidden layer: no feedback, so every rule is the same exact head.
    RDClassifier((), rule=rule, max_iter=1).fit(X[:50], y[:50])


@pytest.mark.parametrize("matrix", MATRICES)
def test_weight_matrix_is_the_layers_linear_map(matrix):
    layer = _layer(7, 5, matrix)
    X = np.random.RandomState(1).standard_normal((4, 7))
    out = np.empty((4, 5))
    layer.forward(X, out)
    np.testing.assert_allclose(X @ layer.weight_matrix() + layer.intercept, out, rtol=1e-12)


@parametrize_with_checks(CHECK_INSTANCES)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("rule", rules_of(RDClassifier))
def test_default_rdclassifier_passes_check_classifiers_train(rule):
    # DRTP coded a binary target 0/1 and stayed at chance (accuracy 0.5).
    check_classifiers_train("RDClassifier", RDClassifier(rule=rule, random_state=0))


# -- the layer ----------------------------------------------------------------


def _layer(n_in, n_out, matrix, weight_init="normal", dtype=np.float64, seed=0):
    layer = RDLayer(n_in, n_out, matrix)
    layer.initialize(np.random.RandomState(seed), weight_init, "tanh", dtype)
    return layer


def _dense_dct_matrix(layer):
    """The (n_out, n_in) matrix the DCT fast path stands for, built from the
    explicit orthonormal DCT-II matrix."""
    R = layer.R
    C = dct(np.eye(R.m), norm="ortho", axis=0)
    rows = np.arange(R.m) if R.rows is None else R.rows
    return C[rows][:, : layer.n_in] * R.signs


@pytest.mark.parametrize("n_in, n_out", [(7, 7), (12, 5), (5, 12)])
def test_dct_fast_path_equals_its_dense_matrix(n_in, n_out):
    layer = _layer(n_in, n_out, "dct")
    R = _dense_dct_matrix(layer)
    rng = np.random.RandomState(1)
    U, G = rng.standard_normal((6, n_in)), rng.standard_normal((6, n_out))
    np.testing.assert_allclose(layer.R.apply(U), U @ R.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.R.apply_transpose(G), G @ R, rtol=1e-12, atol=1e-12)
    # The scale gives rows of unit mean squared norm, like "gaussian"'s.
    assert np.mean(np.sum(R**2, axis=1)) == pytest.approx(1.0)


def test_gaussian_rows_have_unit_expected_norm():
    R = _layer(400, 300, "gaussian").R.RT.T
    assert np.mean(np.sum(R**2, axis=1)) == pytest.approx(1.0, abs=0.02)


def _finite_differences(f, x, eps=1e-6):
    """Central differences of the scalar f() in every entry of x (in place)."""
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        plus = f()
        x[i] = saved - eps
        minus = f()
        x[i] = saved
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def _rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(a + b)


@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("n_in, n_out", [(6, 4), (4, 6)])
def test_layer_gradients_match_finite_differences(matrix, n_in, n_out):
    layer = _layer(n_in, n_out, matrix)
    rng = np.random.RandomState(2)
    X, V = rng.standard_normal((5, n_in)), rng.standard_normal((5, n_out))

    def loss():  # dLoss/dA = V
        return float(np.sum(layer.forward(X, np.empty((5, n_out))) * V))

    layer.forward(X, np.empty((5, n_out)), training=True)
    grads = [np.empty_like(p) for p in layer.params]
    layer.gradients(X, V, grads)
    for param, grad in zip(layer.params, grads):
        assert _rel_err(grad, _finite_differences(loss, param)) < 1e-6
    assert _rel_err(layer.backward(V), _finite_differences(loss, X)) < 1e-6


@pytest.mark.parametrize("matrix", MATRICES)
def test_layer_sparse_input_matches_dense(matrix):
    layer = _layer(8, 5, matrix, dtype=np.float32)
    X = sp.random(6, 8, density=0.3, format="csr", dtype=np.float32, random_state=0)
    delta = np.random.RandomState(0).standard_normal((6, 5)).astype(np.float32)
    outs, grads = [], []
    for inputs in (X, X.toarray()):
        out = layer.forward(inputs, np.empty((6, 5), np.float32), training=True)
        g = [np.empty_like(p) for p in layer.params]
        layer.gradients(inputs, delta, g)
        outs.append(out)
        grads.append(g)
    assert outs[0].dtype == np.float32
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(*grads):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gaussian_matrix_too_large_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(skdfa._layers, "_MAX_DENSE_R_BYTES", 1000)
    X, y = np.random.RandomState(0).rand(20, 40), np.arange(20) % 2
    with pytest.raises(ValueError, match="rd_matrix='gaussian' cannot serve.*'dct'"):
        RDClassifier(hidden_layer_sizes=(16,), max_iter=1).fit(X, y)
    # The DCT never forms R, so the same shapes are fine.
    RDClassifier(hidden_layer_sizes=(16,), max_iter=1, rd_matrix="dct").fit(X, y)


# -- the estimator ------------------------------------------------------------


@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("output_layer", ["rd", "dense"])
def test_network_gradients_under_bp_match_finite_differences(matrix, output_layer):
    rng = np.random.RandomState(0)
    X, y = rng.standard_normal((8, 5)), np.arange(8) % 3
    clf = RDClassifier(
        hidden_layer_sizes=(6, 4),
        rule="bp",
        rd_matrix=matrix,
        output_layer=output_layer,
        weight_init="normal",
        max_iter=1,
        random_state=0,
    )
    clf.fit(X, y)  # builds a float64 network
    net = clf._fit_state.network
    Y = np.eye(3)[y]
    ws = Workspace(net, 8, (0.0, 0.0), np.random.default_rng(0))

    def loss():
        scores = net.decision(X)
        return float(OUTPUTS[net.output](scores, Y, np.empty_like(scores), net.ops).mean())

    assert train_batch(net, ws, X, Y, None, alpha=0.0)[0] == pytest.approx(loss())
    # Every trainable array of every layer: d1, d2, b of the RD layers, and
    # coef, intercept of a dense output layer.
    assert len(net.params) == 3 * 3 - (output_layer == "dense")
    for param, grad in zip(net.params, ws.grads):
        assert _rel_err(grad, _finite_differences(loss, param)) < 1e-6


def test_n_params_formula_and_linear_growth():
    X, y = np.random.RandomState(0).rand(30, 7), np.arange(30) % 3
    fit = dict(max_iter=1, random_state=0)

    def n_params(width, **params):
        clf = RDClassifier(hidden_layer_sizes=(width, width), **params, **fit)
        return clf.fit(X, y).n_params_

    # (n_in + 2 n_out) per RD layer; (n_in + 1) n_out for a dense output.
    assert n_params(10) == (7 + 20) + (10 + 20) + (10 + 6)
    assert n_params(10, output_layer="dense") == (7 + 20) + (10 + 20) + 11 * 3
    # Two hidden layers: n_params = 13 + 6 * width, linear in the width.
    growth = np.diff([n_params(w, rd_matrix="dct") for w in (10, 20, 30, 40)])
    assert (growth == 6 * 10).all()
    assert RDClassifier(hidden_layer_sizes=(), **fit).fit(X, y).n_params_ == 7 + 2 * 3
    dense = DFAClassifier(hidden_layer_sizes=(10, 10), **fit).fit(X, y)
    assert dense.n_params_ == 8 * 10 + 11 * 10 + 11 * 3


@pytest.mark.parametrize("output_layer", ["rd", "dense"])
def test_fitted_attributes_are_the_layers_parameters(output_layer):
    X = np.random.RandomState(0).rand(30, 7).astype(np.float32)
    y = np.arange(30) % 3
    clf = RDClassifier(
        hidden_layer_sizes=(5, 4), output_layer=output_layer, max_iter=2, random_state=0
    ).fit(X, y)
    layers = clf._fit_state.network.layers
    n_rd = 3 if output_layer == "rd" else 2
    assert len(clf.diagonals_) == n_rd and len(clf.intercepts_) == 3
    for layer, (d1, d2) in zip(layers, clf.diagonals_):
        assert d1 is layer.d1 and d2 is layer.d2  # shared, not copies
        assert d1.shape == (layer.n_in,) and d2.shape == (layer.n_out,)
        assert d1.dtype == np.float32
    if output_layer == "rd":
        assert clf.output_coef_ is None
    else:
        assert clf.output_coef_ is layers[-1].coef and clf.output_coef_.shape == (4, 3)
    assert clf.transform(X).dtype == np.float32


@pytest.mark.parametrize("matrix", MATRICES)
def test_same_random_state_same_model_and_sparse_input(matrix):
    X = np.random.RandomState(0).rand(40, 9)
    X[X < 0.6] = 0
    y = np.arange(40) % 2
    params = dict(hidden_layer_sizes=(8,), rd_matrix=matrix, max_iter=3, random_state=1)
    first = RDClassifier(**params).fit(X, y)
    second = RDClassifier(**params).fit(X, y)
    sparse = RDClassifier(**params).fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    np.testing.assert_allclose(
        first.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)), rtol=1e-10
    )
    other = RDClassifier(**{**params, "random_state": 2}).fit(X, y)
    assert not np.allclose(first.predict_proba(X), other.predict_proba(X))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(rd_matrix="hadamard"), "rd_matrix"),
        (dict(output_layer="sparse"), "output_layer"),
        (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
    ],
)
def test_bad_parameters_are_clear_errors(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        RDClassifier(**params).fit(np.ones((4, 2)), [0, 1, 0, 1])


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    # float32 halves the cost of the 512-wide layers.
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, stratify=y, test_size=0.25, random_state=0)


def test_two_hidden_rd_layers_learn_digits_under_dfa(digits):
    X_train, X_test, y_train, y_test = digits
    clf = RDClassifier(
        hidden_layer_sizes=(512, 512),
        rule="dfa",
        learning_rate_init=0.03,
        max_iter=30,
        random_state=0,
    ).fit(X_train, y_train)
    # Over random_state 0-7: 0.898 to 0.940 (mean 0.918, standard deviation
    # 0.014); the bound is the mean less 3 standard deviations.
    assert clf.score(X_test, y_test) >= 0.875


def test_dfa_learns_from_zero_init_and_bp_does_not(digits):
    X_train, X_test, y_train, y_test = digits
    params = dict(
        hidden_layer_sizes=(256,),
        weight_init="zeros",
        learning_rate_init=0.03,
        max_iter=10,
        random_state=0,
    )
    dfa = RDClassifier(rule="dfa", **params).fit(X_train, y_train)
    bp = RDClassifier(rule="bp", **params).fit(X_train, y_train)
    assert dfa.score(X_test, y_test) > 0.75
    # Hidden deltas vanish through the output's d2 = 0 and the hidden outputs
    # stay 0, so back-propagation only learns the output bias: the majority class.
    assert bp.score(X_test, y_test) < 0.15


@pytest.mark.parametrize("output_layer", ["rd", "dense"])
def test_rebinding_fitted_attributes_changes_the_model(output_layer):
    import pickle

    from scipy.special import softmax

    X, y = load_digits(return_X_y=True)
    X = X[:100] / 16
    clf = RDClassifier((16,), output_layer=output_layer, max_iter=2, random_state=0)
    clf = pickle.loads(pickle.dumps(clf.fit(X, y[:100])))
    # A zero last map leaves only the output bias: softmax(intercept) everywhere.
    if output_layer == "rd":
        d1, d2 = clf.diagonals_[-1]
        clf.diagonals_[-1] = (d1, np.zeros_like(d2))
    else:
        clf.output_coef_ = np.zeros_like(clf.output_coef_)
    clf.intercepts_[-1] = np.linspace(-1, 1, 10)
    np.testing.assert_allclose(
        clf.predict_proba(X[:3]), np.tile(softmax(np.linspace(-1, 1, 10)), (3, 1)), rtol=1e-12
    )
