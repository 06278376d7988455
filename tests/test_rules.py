"""Each rule's deltas and feedback updates equal their formulas;
back-propagation equals finite differences."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit, softmax
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skdfa import DFAClassifier
from skdfa._layers import DenseLayer
from skdfa._network import Network, Workspace, train_batch
from skdfa._optimizers import SGDOptimizer
from skdfa._rules import RULES
from skdfa.rules import DirectFeedbackAlignment, FeedbackSampler

from ._engine_helpers import tiny_batch, tiny_network, workspace

ACT = {
    "identity": (lambda a: a, lambda h: np.ones_like(h)),
    "tanh": (np.tanh, lambda h: 1 - h**2),
    "logistic": (expit, lambda h: h * (1 - h)),
    "relu": (lambda a: np.maximum(a, 0), lambda h: (h > 0).astype(float)),
}
OUT = {"identity": lambda a: a, "softmax": lambda a: softmax(a, axis=1), "logistic": expit}


def _forward(net, X, activation):
    f = ACT[activation][0]
    W = [layer.coef for layer in net.layers]
    b = [layer.intercept for layer in net.layers]
    H = [X]
    for l in range(len(W) - 1):
        H.append(f(H[-1] @ W[l] + b[l]))
    return W, H, H[-1] @ W[-1] + b[-1]


def _sign_feedback(net, rule, seed=1):
    """The sign-symmetry rules' B_{l+1}, from the weights and the feedback
    stream (tiny_network draws it from RandomState(seed + 1), gaussian, scale 1)."""
    W = [layer.coef for layer in net.layers]
    rng = np.random.RandomState(seed)
    B = []
    for l in range(len(W) - 1):
        fan_in, fan_out = W[l + 1].shape
        if rule == "usf":
            magnitude = np.sqrt(2 / (fan_in + fan_out))
        else:
            magnitude = np.abs(rng.standard_normal((fan_out, fan_in)))
        B.append(np.sign(W[l + 1].T) * magnitude)
    return B


def _reference(net, X, Y, rule, activation, output, masks=None, w=None):
    """The deltas and weight gradients written out from the update equations.

    ``masks``: the inverted-dropout masks of the input and of each hidden
    layer; a dropped unit outputs 0 and gets no delta. ``w``: the sample
    weights (None: unweighted).
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
    w = np.ones(X.shape[0]) if w is None else w
    row = (w / w.sum())[:, None]
    e = (OUT[output](A) - Y) * row
    if rule in ("usf", "frsf", "brsf"):
        B = _sign_feedback(net, rule)
    else:
        B = net.feedback_matrices()
    deltas = [None] * L
    for l in reversed(range(L)):
        if rule in ("dfa", "dkp"):
            signal = e @ B[l]
        elif rule == "sdfa":
            signal = (np.sign(OUT[output](A) - Y) * row) @ B[l]
        elif rule == "drtp":
            # One binary column is projected as -1/+1.
            T = 2 * Y - 1 if Y.shape[1] == 1 and output == "logistic" else Y
            signal = (T * row) @ B[l]
        else:
            upstream = e if l == L - 1 else deltas[l + 1]
            signal = upstream @ (W[l + 1].T if rule == "bp" else B[l])
        deltas[l] = signal * df(F[l]) * masks[l + 1]
    deltas.append(e)
    grads = []
    for l in range(len(W)):
        grads += [H[l].T @ deltas[l], deltas[l].sum(axis=0)]
    # The learned feedback's gradients: W_{l+1}'s transposed (kp), or the
    # gradient of a direct connection h_l -> output of weights B_l.T (dkp).
    if rule == "kp":
        grads += [grads[2 * (l + 1)].T for l in range(L)]
    elif rule == "dkp":
        grads.append(np.hstack([e.T @ H[l + 1] for l in range(L)]))
    return grads


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
@pytest.mark.parametrize("n_outputs", [2, 1])
def test_rule_gradients_equal_their_formula(rule, activation, output, n_outputs):
    net = tiny_network(rule, activation, output, units=(3, 4, 5, n_outputs))
    X, Y = tiny_batch(net)
    ws = workspace(net, X.shape[0])
    train_batch(net, ws, X, Y, None, alpha=0.0)
    expected = _reference(net, X, Y, rule, activation, output)
    assert len(ws.grads) == len(expected)
    for got, want in zip(ws.grads, expected):
        assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rule", ["sdfa", "drtp", "dkp", "kp"])
def test_weighted_signals_follow_the_sample_weights(rule):
    # Sign-DFA weights each sample's error sign like e: w / sum(w).
    net = tiny_network(rule)
    X, Y = tiny_batch(net)
    w = np.array([0.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    ws = workspace(net, X.shape[0])
    train_batch(net, ws, X, Y, w, alpha=0.0)
    for got, want in zip(ws.grads, _reference(net, X, Y, rule, "tanh", "softmax", w=w)):
        assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rule", ["usf", "frsf", "brsf"])
def test_sign_feedback_follows_the_weights(rule):
    net = tiny_network(rule)
    for got, want in zip(net.feedback_matrices(), _sign_feedback(net, rule), strict=True):
        assert_allclose(got, want, rtol=1e-15)
    magnitudes = [np.abs(B) for B in net.feedback_matrices()]
    rng = np.random.RandomState(0)
    for layer in net.layers:  # new weights, new signs
        layer.coef[...] = rng.standard_normal(layer.coef.shape)
    net.update_feedback(decay=0.5)  # no decay for sign rules
    for l, B in enumerate(net.feedback_matrices()):
        signs = np.sign(net.layers[l + 1].coef.T)
        if rule == "brsf":
            # Redrawn: the stream's next matrices, after the initial ones.
            stream = np.random.RandomState(1)
            for shape in [M.shape for M in magnitudes]:
                stream.standard_normal(shape)
            for previous in magnitudes[:l]:
                stream.standard_normal(previous.shape)
            magnitude = np.abs(stream.standard_normal(B.shape))
        else:
            magnitude = magnitudes[l]
        assert_allclose(B, signs * magnitude, rtol=1e-15)


@pytest.mark.parametrize("rule", ["kp", "dkp"])
def test_learned_feedback_takes_one_sgd_step_and_decays(rule):
    """One plain SGD step: kp's B_{l+1} <- (1-d) (B_{l+1} - lr grad_W_{l+1}.T)
    with W_{l+1} <- (1-d) (W_{l+1} - lr grad_W_{l+1}); dkp's
    B_l <- (1-d) (B_l - lr e.T @ h_l)."""
    lr, decay = 0.1, 0.2
    net = tiny_network(rule)
    X, Y = tiny_batch(net)
    W, H, A = _forward(net, X, "tanh")
    W0 = [w.copy() for w in W]
    B0 = [B.copy() for B in net.feedback_matrices()]
    e = (softmax(A, axis=1) - Y) / X.shape[0]
    ws = workspace(net, X.shape[0])
    train_batch(net, ws, X, Y, None, alpha=0.0)
    grad_W = [H[l].T @ delta for l, delta in enumerate(_deltas(net, X, Y, rule, W0, B0, H, e))]
    SGDOptimizer(net.params, lr, "constant", 0.5, momentum=0.0, nesterov=False).update_params(
        net.params, ws.grads
    )
    net.update_feedback(decay)
    for l, B in enumerate(net.feedback_matrices()):
        if rule == "kp":
            want = (1 - decay) * (B0[l] - lr * grad_W[l + 1].T)
            assert_allclose(net.layers[l + 1].coef, (1 - decay) * (W0[l + 1] - lr * grad_W[l + 1]))
        else:
            want = (1 - decay) * (B0[l] - lr * e.T @ H[l + 1])
        assert_allclose(B, want, rtol=1e-12, atol=1e-15)
    # The first layer has no feedback partner: it does not decay.
    assert_allclose(net.layers[0].coef, W0[0] - lr * grad_W[0])


def _deltas(net, X, Y, rule, W, B, H, e):
    deltas = [None] * (len(W) - 1) + [e]
    for l in reversed(range(len(W) - 1)):
        signal = e @ B[l] if rule == "dkp" else deltas[l + 1] @ B[l]
        deltas[l] = signal * (1 - H[l + 1] ** 2)
    return deltas


@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop"])
def test_kolen_pollack_mismatch_shrinks_geometrically(solver):
    # W_{l+1} - B_{l+1}.T after t updates is (1 - decay)^t times its value
    # before them, whatever the optimizer: B receives W's update transposed.
    X, y = load_digits(return_X_y=True)
    X, y = X[:150] / 16, y[:150]
    decay = 0.05
    clf = DFAClassifier(
        (12, 10), rule="kp", solver=solver, feedback_decay=decay, batch_size=50,
        alpha=1e-2, max_iter=1, warm_start=True, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        before = [clf.coefs_[l + 1] - B.T for l, B in enumerate(clf.feedback_)]
        clf.set_params(max_iter=4).fit(X, y)
    t = 4 * 3  # 4 epochs of 3 batches
    for l, B in enumerate(clf.feedback_):
        assert_allclose(clf.coefs_[l + 1] - B.T, (1 - decay) ** t * before[l], rtol=1e-9, atol=1e-15)
    assert np.abs(before[0]).max() > 0.01  # a mismatch to shrink


def _dropout_masks(seed, shapes, rates):
    """Inverted dropout drawn as the engine draws it: one uniform array per
    mask from ``default_rng(seed)``, the input's first; a unit is dropped
    (0) with probability ``rate`` and kept as ``1 / (1 - rate)``."""
    rng = np.random.default_rng(seed)
    return [(rng.random(shape) >= rate) / (1 - rate) for shape, rate in zip(shapes, rates)]


@pytest.mark.parametrize("rule", sorted(RULES))
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
    input_mask = ws.dropout_mask(np.empty(X.shape), rate)
    for mask in (hidden_mask, input_mask):
        # The fraction dropped is within 4 standard deviations of rate.
        assert abs(np.mean(mask == 0) - rate) < 4 * np.sqrt(rate * (1 - rate) / mask.size)
        assert_allclose(mask[mask != 0], 1 / (1 - rate), rtol=1e-12)


def test_feedback_shapes_per_rule():
    units = (3, 4, 5, 2)
    shapes = {r: [B.shape for B in tiny_network(r, units=units).feedback_matrices()]
              for r in RULES}
    for rule in ["dfa", "drtp", "sdfa", "dkp"]:
        assert shapes[rule] == [(2, 4), (2, 5)]
    for rule in ["fa", "usf", "frsf", "brsf", "kp"]:
        assert shapes[rule] == [(5, 4), (2, 5)]  # like W_{l+1}.T
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
    weight_decay = train_batch(net, ws, X, Y, sample_weight, alpha).weight_decay
    # The optimizer adds the L2 penalty's gradient, weight_decay * param.
    analytic = [g + d * p for g, d, p in zip(ws.grads, weight_decay, net.params)]
    assert any(d > 0 for d in weight_decay) and not all(d > 0 for d in weight_decay)
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
        angles = train_batch(net, workspace(net, 6), X, Y, None, 0.0, track_alignment=True).angles
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


@pytest.mark.parametrize("rule", sorted(RULES))
def test_weight_alignment_matches_formula(rule):
    net = tiny_network(rule, units=(3, 4, 5, 6, 2))
    W = [layer.coef for layer in net.layers]
    B = net.feedback_matrices()

    def angle(a, b):
        cos = np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b)
        return np.degrees(np.arccos(cos))

    if rule == "bp":
        expected = [0.0, 0.0, 0.0]
    elif rule in ("dfa", "drtp", "sdfa", "dkp"):
        # B_l against the whole path (W_{l+1} @ ... @ W_L).T
        expected = [angle(B[0], (W[1] @ W[2] @ W[3]).T), angle(B[1], (W[2] @ W[3]).T),
                    angle(B[2], W[3].T)]
    else:
        expected = [angle(B[l], W[l + 1].T) for l in range(3)]
    assert_allclose(net.weight_alignment(), expected, rtol=1e-10)
    if rule in ("usf", "frsf", "brsf"):  # same signs: under 90 degrees
        assert (net.weight_alignment() < 90).all()


def test_estimators_record_weight_alignment_with_alignment():
    X, y = load_digits(return_X_y=True)
    params = dict(hidden_layer_sizes=(16, 8), feedback_decay=0.02, learning_rate_init=0.01,
                  batch_size=50, max_iter=20, tol=0, n_iter_no_change=100,
                  track_alignment=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kp = DFAClassifier(rule="kp", **params).fit(X[:300] / 16, y[:300])
        fa = DFAClassifier(rule="fa", **params).fit(X[:300] / 16, y[:300])
    assert kp.weight_alignment_.shape == kp.alignment_.shape == (len(kp.alignment_steps_), 2)
    # Random feedback starts near 90 degrees from W.T; KP's learns to follow
    # it (measured: 7 and 7 degrees at the end), FA's stays fixed while W
    # aligns only partly (50 and 47).
    assert (kp.weight_alignment_[0] > 80).all()
    assert (kp.weight_alignment_[-1] < 20).all()
    assert (fa.weight_alignment_[-1] > 40).all()


def test_warm_start_into_a_learnt_rule_optimizes_its_feedback():
    # Switching rules under warm_start redraws the feedback; learnt feedback
    # gets optimizer state of its own and moves from the next update on.
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    clf = DFAClassifier((8,), max_iter=1, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        for rule in ["dkp", "kp", "fa"]:
            clf.set_params(rule=rule).fit(X, y)
            drawn = [B.copy() for B in clf.feedback_]
            clf.set_params(max_iter=1).fit(X, y)
            moved = [not np.array_equal(a, b) for a, b in zip(drawn, clf.feedback_)]
            assert all(moved) == (rule != "fa")


class _PassThrough:
    """A layer without parameters (as a pooling layer): A = X."""

    kind = "pass"
    params = param_names = regularized = ()
    n_params = 0
    feedback_shape = weights = None

    def __init__(self, n):
        self.n_in = self.n_out = n
        self.output_shape = (n,)

    def initialize(self, rng, weight_init, activation, dtype):
        pass

    def forward(self, X, out, training=False):
        out[...] = X
        return out

    def backward(self, delta, feedback=None):
        return delta

    def as_output(self, flat):
        return flat


# The "map" form: the projection lands on each layer with parameters' own
# output (DKP has no other form).
@pytest.mark.parametrize("rule", [DirectFeedbackAlignment(conv_feedback="map"), "dkp"],
                         ids=["dfa", "dkp"])
def test_direct_rules_project_only_to_layers_with_parameters(rule):
    layers = [DenseLayer(3, 4), _PassThrough(4), DenseLayer(4, 2)]
    net = Network(layers, "tanh", "softmax", rule)
    feedback = FeedbackSampler(np.random.RandomState(1), "gaussian", 1.0, np.float64)
    net.initialize(np.random.RandomState(0), "glorot", np.float64, lambda rng: feedback)
    (B,) = net.feedback_matrices()
    assert B.shape == (2, 4)
    X, Y = tiny_batch(net)
    ws = workspace(net, X.shape[0])
    angles = train_batch(net, ws, X, Y, None, alpha=0.0, track_alignment=True).angles
    W0, b0, W2, b2 = (p.copy() for p in net.params[:4])
    H1 = np.tanh(X @ W0 + b0)
    H2 = np.tanh(H1)  # the pass-through layer's activation
    e = (softmax(H2 @ W2 + b2, axis=1) - Y) / X.shape[0]
    delta = (e @ B) * (1 - H1**2)
    expected = [X.T @ delta, delta.sum(axis=0), H2.T @ e, e.sum(axis=0)]
    if rule == "dkp":
        expected.append(e.T @ H1)  # the projection's own gradient, from layer 0's output
    for got, want in zip(ws.grads, expected, strict=True):
        assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert np.isfinite(angles[0]) and np.isnan(angles[1])


@pytest.mark.parametrize("name", ["dfa", "drtp", "sdfa"])
def test_kernel_form_equals_map_form_without_convolutions(name):
    # conv_feedback="kernel" differs only under a convolution: on a dense
    # network it draws the same matrices and takes the same steps.
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    fits = []
    for rule in (name, type(RULES[name])(conv_feedback="kernel")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(DFAClassifier((16, 8), rule=rule, max_iter=3, random_state=0).fit(X, y))
    for a, b in zip(fits[0].coefs_ + fits[0].feedback_, fits[1].coefs_ + fits[1].feedback_,
                    strict=True):
        np.testing.assert_array_equal(a, b)
