"""The optimizers against sklearn's reference implementations and their formulas."""

import copy
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer as SkAdam
from sklearn.neural_network._stochastic_optimizers import SGDOptimizer as SkSGD

from skdfa._array_ops import ArrayOps, NumpyOps
from skdfa._optimizers import AdamOptimizer, RMSpropOptimizer, SGDOptimizer


def _params(rng):
    return [rng.standard_normal((4, 3)), rng.standard_normal(3)]


def _run(optimizer, params, grads_seq):
    for grads in grads_seq:
        optimizer.update_params(params, grads)
    return params


@pytest.fixture
def grads_seq():
    rng = np.random.RandomState(1)
    return [[rng.standard_normal((4, 3)), rng.standard_normal(3)] for _ in range(5)]


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_matches_sklearn(grads_seq, nesterov):
    ours, ref = _params(np.random.RandomState(0)), _params(np.random.RandomState(0))
    _run(SGDOptimizer(ours, 0.1, "constant", 0.5, 0.9, nesterov), ours, grads_seq)
    _run(SkSGD(ref, 0.1, "constant", 0.9, nesterov, 0.5), ref, grads_seq)
    for a, b in zip(ours, ref):
        assert_allclose(a, b, rtol=1e-12)


def test_adam_matches_sklearn(grads_seq):
    ours, ref = _params(np.random.RandomState(0)), _params(np.random.RandomState(0))
    adam = AdamOptimizer(ours, 0.01, "constant", 0.5, 0.9, 0.999, 1e-8)
    sk_adam = SkAdam(ref, 0.01, 0.9, 0.999, 1e-8)
    _run(adam, ours, grads_seq)
    _run(sk_adam, ref, grads_seq)
    for a, b in zip(ours, ref):
        assert_allclose(a, b, rtol=1e-10)  # the step's products round in another order
    # The moments are scikit-learn's m and v, rounded alike.
    for ours_state, sk_state in [(adam.ms, sk_adam.ms), (adam.vs, sk_adam.vs)]:
        for a, b in zip(ours_state, sk_state):
            assert_array_equal(a, b)


def test_rmsprop_formula(grads_seq):
    params = _params(np.random.RandomState(0))
    expected = [p.copy() for p in params]
    squares = [np.zeros_like(p) for p in params]
    for grads in grads_seq:
        for p, s, g in zip(expected, squares, grads):
            s[...] = 0.9 * s + 0.1 * g**2
            p -= 0.01 * g / (np.sqrt(s) + 1e-8)
    _run(RMSpropOptimizer(params, 0.01, "constant", 0.5, 0.9, 1e-8), params, grads_seq)
    for a, b in zip(params, expected):
        assert_allclose(a, b, rtol=1e-12)


def test_schedules():
    opt = SGDOptimizer([np.zeros(2)], 0.1, "invscaling", 0.5, 0.0, False)
    opt.iteration_ends(99)
    assert opt.learning_rate == pytest.approx(0.1 / 100**0.5)
    adaptive = SGDOptimizer([np.zeros(2)], 0.1, "adaptive", 0.5, 0.0, False)
    assert adaptive.trigger_stopping("no improvement", verbose=False) is False
    assert adaptive.learning_rate == pytest.approx(0.02)
    assert SGDOptimizer([np.zeros(2)], 0.1, "constant", 0.5, 0, False).trigger_stopping("", False)


def test_float32_state_and_pickle_round_trip(grads_seq):
    params = [p.astype(np.float32) for p in _params(np.random.RandomState(0))]
    grads32 = [[g.astype(np.float32) for g in grads] for grads in grads_seq]
    opt = AdamOptimizer(params, 0.01, "constant", 0.5, 0.9, 0.999, 1e-8)
    _run(opt, params, grads32[:2])
    assert all(m.dtype == np.float32 for m in opt.ms + opt.vs)
    restored = pickle.loads(pickle.dumps(opt))
    twin = [p.copy() for p in params]
    _run(opt, params, grads32[2:])
    _run(restored, twin, grads32[2:])
    for a, b in zip(params, twin):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert copy.deepcopy(opt).t == opt.t


@pytest.mark.parametrize("Optimizer, args", [
    (SGDOptimizer, (0.9, True)), (AdamOptimizer, (0.9, 0.999, 1e-8)),
    (RMSpropOptimizer, (0.9, 1e-8)),
])
def test_weight_decay_steps_along_the_penalized_gradient(Optimizer, args, grads_seq):
    # update_params(params, grads, [d, 0]) follows grad + d * param for the
    # first array and grad alone for the second, at each step's own params.
    decayed, reference = _params(np.random.RandomState(0)), _params(np.random.RandomState(0))
    opt_decayed = Optimizer(decayed, 0.01, "constant", 0.5, *args)
    opt_reference = Optimizer(reference, 0.01, "constant", 0.5, *args)
    for grads in grads_seq:
        penalized = [grads[0] + 0.3 * reference[0], grads[1].copy()]
        opt_reference.update_params(reference, penalized)
        opt_decayed.update_params(decayed, [g.copy() for g in grads], [0.3, 0.0])
    for a, b in zip(decayed, reference):
        assert_allclose(a, b, rtol=1e-12)
    untouched = _params(np.random.RandomState(0))
    _run(Optimizer(untouched, 0.01, "constant", 0.5, *args), untouched, grads_seq)
    assert not np.allclose(untouched[0], decayed[0]) and np.allclose(untouched[1], decayed[1])


def test_step_schedule_is_constant_rates_between_its_epochs():
    # With plain SGD (no momentum), "step" equals fitting at the initial rate
    # up to the first step epoch, then on at a tenth of it (warm start).
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    from skdfa import DFAClassifier

    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16
    y = y[:300]
    common = dict(hidden_layer_sizes=(16,), solver="sgd", momentum=0.0, shuffle=False,
                  random_state=0, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stepped = DFAClassifier(learning_rate="step", learning_rate_init=0.1, step_epochs=[2],
                                step_factor=0.1, max_iter=4, **common).fit(X, y)
        by_hand = DFAClassifier(learning_rate_init=0.1, max_iter=2, warm_start=True, **common)
        by_hand.fit(X, y)
        by_hand.set_params(learning_rate_init=0.01)
        by_hand.fit(X, y)
    # 0.1 * 0.1 is 0.010000000000000002: equal up to that last bit.
    for a, b in zip(stepped.coefs_, by_hand.coefs_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert not np.allclose(stepped.coefs_[0], DFAClassifier(
        learning_rate_init=0.1, max_iter=4, **common).fit(X, y).coefs_[0])
    assert stepped._fit_state.optimizer.learning_rate == pytest.approx(0.01)


def test_step_schedule_counts_epochs_across_partial_fit():
    from sklearn.datasets import load_digits

    from skdfa import DFAClassifier

    X, y = load_digits(return_X_y=True)
    clf = DFAClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="step",
                        learning_rate_init=0.1, step_epochs=(1, 3), step_factor=0.5)
    rates = []
    for _ in range(4):
        clf.partial_fit(X[:100] / 16, y[:100], classes=np.arange(10))
        rates.append(clf._fit_state.optimizer.learning_rate)
    assert rates == pytest.approx([0.05, 0.05, 0.025, 0.025])


@pytest.mark.parametrize("step_epochs", [(0, 5), (2.5,), ("10",), (True,)])
def test_step_epochs_must_be_positive_integers(step_epochs):
    from skdfa import DFAClassifier

    with pytest.raises(ValueError, match="'step_epochs' parameter .* positive integers"):
        DFAClassifier(step_epochs=step_epochs).fit(np.eye(4), [0, 1, 0, 1])


OPTIMIZER_ARGS = [
    (SGDOptimizer, (0.9, True)), (SGDOptimizer, (0.9, False)),
    (AdamOptimizer, (0.9, 0.999, 1e-8)), (RMSpropOptimizer, (0.9, 1e-8)),
]


class _ForeachNumpyOps(NumpyOps):
    """numpy through the multi-tensor kernels (``_step_foreach``), whose
    primitives ``ArrayOps`` runs one array at a time."""

    foreach = True


def _states(optimizer):
    return [a for name in optimizer.state_names for a in getattr(optimizer, name)]


@pytest.mark.parametrize("Optimizer, args", OPTIMIZER_ARGS)
def test_both_kernels_step_alike_and_keep_one_state_form(Optimizer, args, grads_seq):
    each, foreach = _params(np.random.RandomState(0)), _params(np.random.RandomState(0))
    opt_each = Optimizer(each, 0.01, "constant", 0.5, *args)
    opt_foreach = Optimizer(foreach, 0.01, "constant", 0.5, *args)
    opt_foreach.bind(_ForeachNumpyOps(), foreach)
    for grads in grads_seq:
        opt_each.update_params(each, [g.copy() for g in grads], [0.3, 0.0])
        opt_foreach.update_params(foreach, [g.copy() for g in grads], [0.3, 0.0])
    # Adam's kernels add epsilon before (one at a time, scikit-learn's) or
    # after (multi-tensor, torch's) the bias correction of sqrt(v).
    tol = dict(rtol=1e-6, atol=1e-8) if Optimizer is AdamOptimizer else dict(rtol=1e-12)
    for a, b in zip(each + _states(opt_each), foreach + _states(opt_foreach)):
        assert_allclose(a, b, **tol)


@pytest.mark.parametrize("Optimizer, args", OPTIMIZER_ARGS)
@pytest.mark.parametrize("foreach", [False, True])
def test_decay_read_from_another_parameter_is_read_before_any_step(
    Optimizer, args, foreach, grads_seq
):
    # Kolen-Pollack's feedback B takes W's penalty transposed: every
    # gradient gets its penalty before any parameter moves.
    W = np.random.RandomState(0).standard_normal((4, 3))
    B = np.random.RandomState(1).standard_normal((3, 4))
    params, reference = [W, B], [W.copy(), B.copy()]
    grads_seq = [[g[0], g[0].T.copy()] for g in grads_seq]
    opt = Optimizer(params, 0.01, "constant", 0.5, *args)
    opt.bind(_ForeachNumpyOps() if foreach else NumpyOps(), params, [W, W.T])
    opt_reference = Optimizer(reference, 0.01, "constant", 0.5, *args)
    opt_reference.bind(_ForeachNumpyOps() if foreach else NumpyOps(), reference)
    for grads in grads_seq:
        penalized = [grads[0] + 0.3 * reference[0], grads[1] + 0.3 * reference[0].T]
        opt_reference.update_params(reference, penalized)
        opt.update_params(params, [g.copy() for g in grads], [0.3, 0.3])
    for a, b in zip(params, reference):
        assert_allclose(a, b, rtol=1e-12)


class _SmallBlocks(NumpyOps):
    """numpy's blocked step over blocks of 5 elements: most parameters span
    several, the last one partial."""

    step_block_size = 5

    def compiled_step(self, loop):
        return None  # the ufuncs, whether numba is installed or not


@pytest.mark.parametrize("way", ["blocked", "compiled"])
@pytest.mark.parametrize("Optimizer, args", OPTIMIZER_ARGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decay", [0.3, np.float32(0.3), np.float64(0.3)])
def test_numpy_steps_round_as_the_whole_array_step(way, Optimizer, args, dtype, decay):
    # numpy steps each parameter block by block (in cache), or, with numba,
    # in one compiled loop; either way every element rounds as in the
    # one-pass step of ufuncs over whole arrays, bit for bit (the moments stay
    # scikit-learn's). A Fortran-ordered parameter is stepped whole by the
    # ufuncs, and a float64 penalty coefficient of float32 arrays (whose
    # product is float64 before it meets the float32 gradient) too.
    if way == "compiled":
        pytest.importorskip("numba")
    rng = np.random.RandomState(0)
    start = [rng.standard_normal(shape).astype(dtype) for shape in [(40, 30), (3,), (2, 7)]]
    start[2] = np.asfortranarray(start[2])
    grads_seq = [[rng.standard_normal(p.shape).astype(dtype) for p in start] for _ in range(4)]
    stepped, whole = [p.copy(order="K") for p in start], [p.copy(order="K") for p in start]
    opt_stepped = Optimizer(stepped, 0.01, "constant", 0.5, *args)
    opt_stepped.bind(_SmallBlocks() if way == "blocked" else NumpyOps(), stepped)
    assert (opt_stepped._compiled_step is not None) == (way == "compiled")
    opt_whole = Optimizer(whole, 0.01, "constant", 0.5, *args)
    opt_whole.bind(ArrayOps(np, None), whole)
    for grads in grads_seq:
        opt_stepped.update_params(stepped, [g.copy() for g in grads], [decay, 0.0, decay])
        opt_whole.update_params(whole, [g.copy() for g in grads], [decay, 0.0, decay])
    for a, b in zip(stepped + _states(opt_stepped), whole + _states(opt_whole)):
        assert a.dtype == dtype
        # Bytes, so that a zero's sign counts too.
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("solver, extra", [
    ("adam", {}), ("sgd", {"nesterovs_momentum": True}), ("rmsprop", {}),
])
@pytest.mark.parametrize("dtype, weights", [
    (np.float32, None), (np.float64, None), (np.float32, "weighted"),
])
def test_fit_is_the_same_with_and_without_numba(monkeypatch, solver, extra, dtype, weights):
    # A fit (several epochs, three hidden layers, learned biases, the L2
    # penalty, sample weights or none) whose steps numba compiles equals, bit
    # for bit, the fit that numpy's ufuncs step.
    pytest.importorskip("numba")
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    from skdfa import DFAClassifier, _compiled

    X, y = load_digits(return_X_y=True)
    X, y = (X[:400] / 16).astype(dtype), y[:400]
    sample_weight = None if weights is None else np.linspace(0.5, 1.5, len(y))
    fits = []
    for enabled in (True, False):
        monkeypatch.setattr(_compiled, "ENABLED", enabled)
        clf = DFAClassifier(hidden_layer_sizes=(32, 32, 32), solver=solver, alpha=1e-3,
                            learning_rate_init=0.01, max_iter=5, random_state=0, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y, sample_weight=sample_weight)
        assert (clf._fit_state.optimizer._compiled_step is None) is not enabled
        fits.append(clf)
    compiled, ufuncs = fits
    assert compiled.loss_curve_ == ufuncs.loss_curve_
    for a, b in zip(compiled.coefs_ + compiled.intercepts_, ufuncs.coefs_ + ufuncs.intercepts_):
        assert a.dtype == dtype
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_adam_state_is_torch_adams(namespace, grads_seq):
    # The moments are what torch.optim.Adam holds (exp_avg, exp_avg_sq), on
    # every namespace; on torch the steps are torch's own.
    torch = pytest.importorskip("torch")
    start = _params(np.random.RandomState(0))
    reference = [torch.tensor(p, requires_grad=True) for p in start]
    torch_adam = torch.optim.Adam(
        [{"params": reference[:1], "weight_decay": 0.3}, {"params": reference[1:]}],
        lr=0.01, betas=(0.9, 0.999), eps=1e-8,
    )
    ours = [torch.tensor(p) for p in start] if namespace == "torch" else start
    adam = AdamOptimizer(ours, 0.01, "constant", 0.5, 0.9, 0.999, 1e-8)
    for grads in grads_seq:
        for p, g in zip(reference, grads):
            p.grad = torch.tensor(g)
        torch_adam.step()
        grads = [torch.tensor(g) for g in grads] if namespace == "torch" else grads
        adam.update_params(ours, [g.clone() if namespace == "torch" else g.copy() for g in grads],
                           [0.3, 0.0])
    # numpy adds epsilon before the bias correction (scikit-learn's step).
    tol = dict(rtol=1e-12) if namespace == "torch" else dict(rtol=1e-6, atol=1e-8)
    for i, p in enumerate(reference):
        state = torch_adam.state[p]
        assert_allclose(np.asarray(ours[i]), p.detach().numpy(), **tol)
        assert_allclose(np.asarray(adam.ms[i]), state["exp_avg"].numpy(), **tol)
        assert_allclose(np.asarray(adam.vs[i]), state["exp_avg_sq"].numpy(), **tol)
