"""Each rule's deltas equal its formula; back-propagation equals finite differences."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit, softmax

from skdfa._network import Workspace, train_batch

from ._engine_helpers import tiny_batch, tiny_network, workspace

ACT = {
    "identity": (lambda a: a, lambda h: np.ones_like(h)),
    "tanh": (np.tanh, lambda h: 1 - h**2),
    "logistic": (expit, lambda h: h * (1 - h)),
    "relu": (lambda a: np.maximum(a, 0), lambda h: (h > 0).astype(float)),
}
OUT = {"identity": lambda a: a, "softmax": lambda a: softmax(a, axis=1), "logistic": expit}


def _reference(net, X, Y, rule, activation, output, masks=None):
    """The deltas and weight gradients written out from the update equations.

    ``masks``: the inverted-dropout masks of the input and of each hidden
    layer; a dropped unit outputs 0 and gets no delta.
    """
    f, df = ACT[activation]
    W = [layer.coef for layer in net.layers]
    b = [layer.intercept for layer in net.layers]
    L = len(W) - 1  # hidden layers
    masks = [np.ones_like(X)] + [1.0] * L if masks is None else masks
    H = [X * masks[0]]  # what each layer sees
    F = []  # hidden activations before dropout
    for l in range(L):
        F.append(f(H[-1] @ W[l] + b[l]))
        H.append(F[-1] * masks[l + 1])
    A = H[-1] @ W[-1] + b[-1]
    n = X.shape[0]
    e = (OUT[output](A) - Y) / n
    B = net.feedback_matrices()
    deltas = [None] * L
    for l in reversed(range(L)):
        if rule == "dfa":
            signal = e @ B[l]
        elif rule == "drtp":
            # One binary column is projected as -1/+1.
            T = 2 * Y - 1 if Y.shape[1] == 1 and output == "logistic" else Y
            signal = (T / n) @ B[l]
        else:
            upstream = e if l == L - 1 else deltas[l + 1]
            signal = upstream @ (W[l + 1].T if rule == "bp" else B[l])
        deltas[l] = signal * df(F[l]) * masks[l + 1]
    deltas.append(e)
    grads = []
    for l in range(len(W)):
        grads += [H[l].T @ deltas[l], deltas[l].sum(axis=0)]
    return grads


@pytest.mark.parametrize("rule", ["dfa", "fa", "bp", "drtp"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
@pytest.mark.parametrize("n_outputs", [2, 1])
def test_rule_gradients_equal_their_formula(rule, activation, output, n_outputs):
    net = tiny_network(rule, activation, output, units=(3, 4, 5, n_outputs))
    X, Y = tiny_batch(net)
    ws = workspace(net, X.shape[0])
    train_batch(net, ws, X, Y, None, alpha=0.0)
    for got, expected in zip(ws.grads, _reference(net, X, Y, rule, activation, output)):
        assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def _dropout_masks(seed, shapes, rates):
    """Inverted dropout drawn as the engine draws it: one uniform array per
    mask from ``default_rng(seed)``, the input's first; a unit is dropped
    (0) with probability ``rate`` and kept as ``1 / (1 - rate)``."""
    rng = np.random.default_rng(seed)
    return [(rng.random(shape) >= rate) / (1 - rate) for shape, rate in zip(shapes, rates)]


@pytest.mark.parametrize("rule", ["dfa", "fa", "bp", "drtp"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_dropout_gradients_equal_the_formula_with_fixed_masks(rule, activation):
    net = tiny_network(rule, activation, units=(6, 40, 30, 3))
    X, Y = tiny_batch(net, n=20)
    rates = (0.3, 0.4)
    ws = Workspace(net, 20, rates, np.random.default_rng(7))
    train_batch(net, ws, X, Y, None, alpha=0.0)
    masks = _dropout_masks(7, [X.shape, (20, 40), (20, 30)], [0.3, 0.4, 0.4])
    # Every mask drops some units and keeps some.
    assert all(0 < np.mean(m == 0) < 1 for m in masks)
    expected = _reference(net, X, Y, rule, activation, "softmax", masks)
    for got, want in zip(ws.grads, expected):
        assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.7])
def test_dropout_masks_drop_rate_and_rescale_the_rest(rate):
    net = tiny_network("dfa", units=(50, 200, 2))
    X, Y = tiny_batch(net, n=500)
    ws = Workspace(net, 500, (rate, rate), np.random.default_rng(0))
    train_batch(net, ws, X, Y, None, alpha=0.0)
    hidden_mask = ws.masks[0]  # kept by the workspace for the backward pass
    input_mask = ws._mask(np.empty(X.shape), rate)
    for mask in (hidden_mask, input_mask):
        # The fraction dropped is within 4 standard deviations of rate.
        assert abs(np.mean(mask == 0) - rate) < 4 * np.sqrt(rate * (1 - rate) / mask.size)
        assert_allclose(mask[mask != 0], 1 / (1 - rate), rtol=1e-12)


def test_feedback_shapes_per_rule():
    units = (3, 4, 5, 2)
    shapes = {r: [B.shape for B in tiny_network(r, units=units).feedback_matrices()]
              for r in ["dfa", "fa", "bp", "drtp"]}
    assert shapes["dfa"] == shapes["drtp"] == [(2, 4), (2, 5)]
    assert shapes["fa"] == [(5, 4), (2, 5)]  # like W_{l+1}.T
    assert shapes["bp"] == []


def _loss(net, X, Y, sample_weight, alpha):
    return train_batch(net, workspace(net, X.shape[0]), X, Y, sample_weight, alpha)[0]


def _objective(net, X, Y, sample_weight, alpha):
    """The loss whose gradient training follows. As in MLPRegressor, the
    squared error is reported averaged over the outputs but trained on the
    gradient of its sum over them."""
    n_outputs = Y.shape[1] if net.output == "identity" else 1
    weight_sum = X.shape[0] if sample_weight is None else sample_weight.sum()
    penalty = 0.5 * alpha * sum(np.sum(p**2) for p in net.regularized_params) / weight_sum
    return n_outputs * _loss(net, X, Y, sample_weight, 0.0) + penalty


@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
@pytest.mark.parametrize("weighted", [False, True])
def test_backprop_matches_finite_differences(activation, output, weighted):
    net = tiny_network("bp", activation, output)
    X, Y = tiny_batch(net)
    sample_weight = np.linspace(0.5, 2.0, X.shape[0]) if weighted else None
    alpha = 0.1
    ws = workspace(net, X.shape[0])
    train_batch(net, ws, X, Y, sample_weight, alpha)
    analytic = [g.copy() for g in ws.grads]
    eps = 1e-6
    for param, grad in zip(net.params, analytic):
        numeric = np.empty_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + eps
            up = _objective(net, X, Y, sample_weight, alpha)
            param[i] = saved - eps
            down = _objective(net, X, Y, sample_weight, alpha)
            param[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        rel = np.linalg.norm(grad - numeric) / max(np.linalg.norm(numeric), 1e-12)
        assert rel < 1e-6


def test_alignment_angle_is_zero_for_bp_and_matches_formula_for_dfa():
    for rule in ["bp", "dfa"]:
        net = tiny_network(rule)
        X, Y = tiny_batch(net)
        _, angles = train_batch(net, workspace(net, 6), X, Y, None, 0.0, track_alignment=True)
        if rule == "bp":
            assert_allclose(angles, 0.0, atol=1e-5)
    # DFA: the angle between (e @ B_l) * f' and the back-propagated delta.
    f, df = ACT["tanh"]
    W = [layer.coef for layer in net.layers]
    b = [layer.intercept for layer in net.layers]
    H1 = f(X @ W[0] + b[0])
    H2 = f(H1 @ W[1] + b[1])
    e = (softmax(H2 @ W[2] + b[2], axis=1) - Y) / 6
    B = net.feedback_matrices()
    bp2 = (e @ W[2].T) * df(H2)
    bp1 = (bp2 @ W[1].T) * df(H1)
    for angle, dfa_delta, bp_delta in zip(angles, [(e @ B[0]) * df(H1), (e @ B[1]) * df(H2)], [bp1, bp2]):
        cos = np.sum(dfa_delta * bp_delta) / np.linalg.norm(dfa_delta) / np.linalg.norm(bp_delta)
        assert angle == pytest.approx(np.degrees(np.arccos(cos)), abs=1e-9)
