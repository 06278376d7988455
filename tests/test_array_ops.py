"""The ops layer itself: every ``ArrayOps`` method on numpy, torch and
array_api_strict, against numpy and scipy references.

Each case in ``CASES`` checks one method on random float64 data; a method
added to ``ArrayOps`` without a case here fails ``test_every_method_has_a_case``.
The sparse paths of ``NumpyOps`` are checked against the dense results.
"""

import numpy as np
import pytest
import scipy.fft
import scipy.sparse as sp
import scipy.special
from numpy.testing import assert_allclose, assert_array_equal

from skdfa._array_ops import ArrayOps, NumpyOps, TorchOps, array_ops

# Checked against torch autograd, with the conv layers, in tests/test_conv.py.
CONV_METHODS = {"conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d",
                "max_unpool2d", "avg_pool2d", "avg_pool2d_input_grad", "global_avg_pool2d",
                "global_avg_pool2d_input_grad"}


def _namespaces():
    out = [pytest.param("numpy", id="numpy")]
    for name in ["torch", "array_api_strict"]:
        out.append(pytest.param(name, id=name, marks=pytest.mark.skipif(
            not _importable(name), reason=f"{name} is not installed")))
    return out


def _importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _ops(name):
    """The ops of a float64 array of namespace ``name`` (CPU)."""
    if name == "numpy":
        return array_ops(np.zeros(1))
    if name == "torch":
        import torch

        return array_ops(torch.zeros(1, dtype=torch.float64))
    import array_api_strict

    return array_ops(array_api_strict.zeros(1, dtype=array_api_strict.float64))


@pytest.fixture(params=_namespaces())
def ops(request):
    return _ops(request.param)


def _x(ops, a):
    """A float64 copy of ``a`` in the namespace (numpy's asarray would alias it)."""
    return ops.asarray(np.array(a, dtype=np.float64))


def _np(ops, x):
    return np.asarray(ops.to_numpy(x))


def _rand(*shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape)


def _out(ops, shape):
    return ops.empty(shape, ops.xp.float64)


def _check_into(ops, method, args, expected, shape=None):
    """``method(*args, out=out)`` returns ``out`` holding ``expected``."""
    out = _out(ops, expected.shape if shape is None else shape)
    result = method(*[_x(ops, a) for a in args], out=out)
    assert result is out
    assert_allclose(_np(ops, out), expected, rtol=1e-12, atol=1e-14)


def _elementwise(name, reference):
    def case(ops):
        x = _rand(4, 5)
        _check_into(ops, getattr(ops, name), [x], reference(x))
        # Shape (n,) too (bias-like arrays).
        v = _rand(6, seed=1)
        _check_into(ops, getattr(ops, name), [v], reference(v))
    return case


def _binary(name, reference):
    def case(ops):
        a, b = _rand(4, 5), np.abs(_rand(4, 5, seed=1)) + 0.5
        _check_into(ops, getattr(ops, name), [a, b], reference(a, b))
        # Broadcast a scalar, as the optimizers do.
        out = _out(ops, (4, 5))
        getattr(ops, name)(_x(ops, a), 0.3, out=out)
        assert_allclose(_np(ops, out), reference(a, 0.3), rtol=1e-12)
    return case


def _empty(ops):
    x = ops.empty((3, 2), ops.xp.float32)
    assert tuple(x.shape) == (3, 2) and x.dtype == ops.xp.float32


def _zeros_like(ops):
    z = ops.zeros_like(_x(ops, _rand(3, 2)))
    assert_array_equal(_np(ops, z), np.zeros((3, 2)))


def _asarray(ops):
    a = _rand(3, 2)
    x = ops.asarray(a, dtype=ops.xp.float32)
    assert x.dtype == ops.xp.float32
    assert_allclose(_np(ops, x), a.astype(np.float32))
    # An array of the namespace stays in it.
    assert_array_equal(_np(ops, ops.asarray(x)), _np(ops, x))


def _astype(ops):
    x = _x(ops, _rand(3, 2))
    assert ops.astype(x, ops.xp.float64) is x  # no copy to the same dtype
    y = ops.astype(x, ops.xp.float32)
    assert y.dtype == ops.xp.float32
    assert_allclose(_np(ops, y), _np(ops, x).astype(np.float32))


def _copy(ops):
    x = _x(ops, _rand(3, 2))
    y = ops.copy(x)
    y *= 2
    assert_allclose(_np(ops, y), 2 * _np(ops, x))


def _numpy_dtype(ops):
    assert ops.numpy_dtype(ops.xp.float32) == np.dtype(np.float32)
    assert ops.numpy_dtype(ops.xp.float64) == np.dtype(np.float64)


def _matmul(ops):
    a, b = _rand(4, 3), _rand(3, 5, seed=1)
    _check_into(ops, ops.matmul, [a, b], a @ b)
    # A transposed view (the weight gradient's X.T @ delta).
    c = _rand(4, 5, seed=2)
    out = _out(ops, (3, 5))
    ops.matmul(_x(ops, a).T, _x(ops, c), out=out)
    assert_allclose(_np(ops, out), a.T @ c, rtol=1e-12)


def _copy_into(ops):
    a = _rand(3, 4)
    out = _out(ops, (3, 4))
    assert ops.copy_into(out, _x(ops, a)) is out
    assert_array_equal(_np(ops, out), a)


def _add_scaled(ops):
    a, x = _rand(3, 4), _rand(3, 4, seed=1)
    out = _x(ops, a)
    ops.add_scaled(out, _x(ops, x), 0.25)
    assert_allclose(_np(ops, out), a + 0.25 * x, rtol=1e-12)


def _arrays(ops, *seeds):
    """Arrays of several shapes (a weight, a bias), one per seed, numpy and
    in the namespace."""
    shapes = [(3, 4), (4,), (2, 2)]
    host = [_rand(*shapes[i % 3], seed=seed) for i, seed in enumerate(seeds)]
    return host, [_x(ops, a) for a in host]


def _add_decay(ops):
    grads, grads_x = _arrays(ops, 0, 1, 2)
    sources, sources_x = _arrays(ops, 3, 4, 5)
    ops.add_decay(grads_x, [0.5, 0.0, 0.5], sources_x)
    for got, g, c, src in zip(grads_x, grads, [0.5, 0.0, 0.5], sources):
        assert_allclose(_np(ops, got), g + c * src, rtol=1e-12)


def _foreach_scale(ops):
    host, xs = _arrays(ops, 0, 1)
    ops.foreach_scale(xs, 0.3)
    for got, a in zip(xs, host):
        assert_allclose(_np(ops, got), 0.3 * a, rtol=1e-12)


def _foreach_add_scaled(ops):
    outs, outs_x = _arrays(ops, 0, 1)
    xs, xs_x = _arrays(ops, 2, 3)
    ops.foreach_add_scaled(outs_x, xs_x, -0.25)
    ops.foreach_add_scaled(outs_x, xs_x)
    for got, out, x in zip(outs_x, outs, xs):
        assert_allclose(_np(ops, got), out + 0.75 * x, rtol=1e-12)


def _foreach_add_product(ops):
    outs, outs_x = _arrays(ops, 0, 1)
    a, a_x = _arrays(ops, 2, 3)
    b, b_x = _arrays(ops, 4, 5)
    ops.foreach_add_product(outs_x, a_x, b_x, 0.1)
    for got, out, x, y in zip(outs_x, outs, a, b):
        assert_allclose(_np(ops, got), out + 0.1 * x * y, rtol=1e-12)


def _foreach_add_quotient(ops):
    outs, outs_x = _arrays(ops, 0, 1)
    a, a_x = _arrays(ops, 2, 3)
    b = [np.abs(x) + 0.5 for x in _arrays(ops, 4, 5)[0]]
    ops.foreach_add_quotient(outs_x, a_x, [_x(ops, x) for x in b], -0.1)
    for got, out, x, y in zip(outs_x, outs, a, b):
        assert_allclose(_np(ops, got), out - 0.1 * x / y, rtol=1e-12)


def _foreach_add_scalar(ops):
    host, xs = _arrays(ops, 0, 1)
    ops.foreach_add_scalar(xs, 2.5)
    for got, a in zip(xs, host):
        assert_allclose(_np(ops, got), a + 2.5, rtol=1e-12)


def _foreach_sqrt(ops):
    host, xs = _arrays(ops, 0, 1)
    xs = [_x(ops, np.abs(a)) for a in host]
    outs = [_out(ops, a.shape) for a in host]
    ops.foreach_sqrt(xs, outs)
    for got, a in zip(outs, host):
        assert_allclose(_np(ops, got), np.sqrt(np.abs(a)), rtol=1e-12)


def _step_counters(ops):
    params = _arrays(ops, 0, 1)[1]
    steps = ops.step_counters(3, params)
    assert len(steps) == 2
    ops.foreach_add_scalar(steps, 1)
    assert [float(step) for step in steps] == [4.0, 4.0]


def _fused_adam(ops):
    # torch.optim.Adam's step, written out (tests/test_optimizers.py checks
    # the optimizers against torch.optim.Adam itself).
    lr, beta_1, beta_2, eps, t = 0.01, 0.9, 0.999, 1e-8, 3
    params, params_x = _arrays(ops, 0, 1)
    grads, grads_x = _arrays(ops, 2, 3)
    ms = [0.1 * m for m in _arrays(ops, 4, 5)[0]]
    vs = [np.abs(v) for v in _arrays(ops, 6, 7)[0]]
    ms_x, vs_x = [_x(ops, m) for m in ms], [_x(ops, v) for v in vs]
    ops.fused_adam(
        params_x, grads_x, ms_x, vs_x, ops.step_counters(t, params_x), lr=lr,
        beta_1=beta_1, beta_2=beta_2, epsilon=eps, weight_decay=[0.5, 0.0],
    )
    for i, decay in enumerate([0.5, 0.0]):
        grad = grads[i] + decay * params[i]
        m = beta_1 * ms[i] + (1 - beta_1) * grad
        v = beta_2 * vs[i] + (1 - beta_2) * grad**2
        denominator = np.sqrt(v) / np.sqrt(1 - beta_2**t) + eps
        expected = params[i] - lr / (1 - beta_1**t) * m / denominator
        assert_allclose(_np(ops, ms_x[i]), m, rtol=1e-12)
        assert_allclose(_np(ops, vs_x[i]), v, rtol=1e-12)
        assert_allclose(_np(ops, params_x[i]), expected, rtol=1e-12)
        # The gradient itself is left as it was.
        assert_allclose(_np(ops, grads_x[i]), grads[i], rtol=0)


def _affine(ops):
    X, W, b = _rand(4, 3), _rand(3, 5, seed=1), _rand(5, seed=2)
    _check_into(ops, ops.affine, [X, W, b], X @ W + b)


def _column_sums(ops):
    x = _rand(6, 4)
    _check_into(ops, ops.column_sums, [x], x.sum(axis=0))


def _column_dots(ops):
    a, b = _rand(6, 4), _rand(6, 4, seed=1)
    _check_into(ops, ops.column_dots, [a, b], np.einsum("ij,ij->j", a, b))


def _take_rows(ops):
    X = _rand(6, 3)
    index = np.array([4, 0, 4, 2])
    out = _out(ops, (4, 3))
    assert ops.take_rows(_x(ops, X), ops.index(index), out=out) is out
    assert_array_equal(_np(ops, out), X[index])


def _row_buffer_and_gather_rows(ops):
    X = _rand(6, 3)
    buffer = ops.row_buffer(_x(ops, X), 5)
    assert tuple(buffer.shape) == (5, 3)
    rows = ops.gather_rows(_x(ops, X), ops.index(np.array([5, 1])), buffer)
    assert_array_equal(_np(ops, rows), X[[5, 1]])
    # The rows are written into the buffer's first rows.
    assert_array_equal(_np(ops, buffer)[:2], X[[5, 1]])


def _rows(ops):
    X = _rand(6, 3)
    assert_array_equal(_np(ops, ops.rows(_x(ops, X), ops.index(np.array([3, 3, 0])))), X[[3, 3, 0]])


def _mask_input(ops):
    X, mask = _rand(4, 3), (_rand(4, 3, seed=1) > 0) * 2.0
    m = _x(ops, mask)
    result = ops.mask_input(_x(ops, X), m)
    assert_allclose(_np(ops, result), X * mask)


def _scale_columns(ops):
    X, d = _rand(4, 3), _rand(3, seed=1)
    assert_allclose(_np(ops, ops.scale_columns(_x(ops, X), _x(ops, d))), X * d)


def _to_dense(ops):
    X = _rand(4, 3)
    assert_array_equal(_np(ops, ops.to_dense(_x(ops, X))), X)


def _write_as(ops):
    # Rows of a wider buffer, seen as maps: what ``compute`` writes lands there.
    buffer = _x(ops, np.zeros((6, 12)))
    maps = _rand(4, 3, 2, 2)
    out = buffer[:4, ...]
    assert ops.write_as(out, (4, 3, 2, 2), lambda m: ops.copy_into(m, _x(ops, maps))) is out
    assert_array_equal(_np(ops, buffer), np.vstack([maps.reshape(4, 12), np.zeros((2, 12))]))


def _step_scratch_and_blocks(ops):
    # The blocks of a step cover every element of the parameter, its gradient
    # and its state once, with scratch shaped like each block.
    params = [_x(ops, _rand(70, 1000)), _x(ops, _rand(5, seed=1))]
    grads = [_x(ops, _rand(70, 1000, seed=2)), _x(ops, _rand(5, seed=3))]
    for param, grad, scratch in zip(params, grads, ops.step_scratch(params)):
        before = _np(ops, param).copy()
        for s, p, g in ops.step_blocks(scratch, param, grad):
            assert tuple(s.shape) == tuple(p.shape) == tuple(g.shape)
            ops.copy_into(s, g)
            p += s
        assert_allclose(_np(ops, param), before + _np(ops, grad), rtol=1e-15)


def _scaled_sum_loop(out, x, scale):
    for i in range(out.size):
        out[i] = out[i] + x[i] * scale


def _compiled_step(ops):
    # numpy with numba runs a loop over the flattened arrays, its scalars in
    # their dtype; it declines (False, nothing done) arrays that flattening
    # would copy and scalars that widen the arithmetic. Elsewhere: no loop.
    step = ops.compiled_step(_scaled_sum_loop)
    if not (type(ops) is NumpyOps and _importable("numba")):
        assert step is None
        return
    out, x = _rand(6, 5).astype(np.float32), _rand(6, 5, seed=1).astype(np.float32)
    expected = out + x * np.float32(0.3)
    assert step([out, x], (0.3,), ()) is True
    assert out.dtype == np.float32 and out.tobytes() == expected.tobytes()
    before = out.copy()
    # Equal to 0.3 but float64: declined, though 0.3 itself was taken.
    assert step([out, x], (np.float64(0.3),), ()) is False
    assert step([out, x], (np.float64(0.3),), ()) is False
    assert step([out.T, x.T], (0.3,), ()) is False
    assert_array_equal(out, before)


def _zero_where_nonpositive(ops):
    Z, delta = _rand(5, 4), _rand(5, 4, seed=1)
    d = _x(ops, delta)
    ops.zero_where_nonpositive(_x(ops, Z), d)
    assert_array_equal(_np(ops, d), np.where(Z > 0, delta, 0.0))


def _dct(ops):
    if type(ops) is ArrayOps:
        with pytest.raises(TypeError, match=f"not on {ops.name} arrays"):
            ops.dct(_x(ops, _rand(3, 4)), 4)
        with pytest.raises(TypeError, match=f"not on {ops.name} arrays"):
            ops.idct(_x(ops, _rand(3, 4)))
        return
    # Even and odd sizes, with and without zero-padding.
    for n_in, n in [(7, 7), (5, 12), (8, 8), (6, 11)]:
        x = _rand(3, n_in, seed=n)
        expected = scipy.fft.dct(np.pad(x, ((0, 0), (0, n - n_in))), norm="ortho", axis=1)
        assert_allclose(_np(ops, ops.dct(_x(ops, x), n)), expected, rtol=1e-10, atol=1e-12)
        y = _rand(3, n, seed=n + 1)
        assert_allclose(
            _np(ops, ops.idct(_x(ops, y))), scipy.fft.idct(y, norm="ortho", axis=1),
            rtol=1e-10, atol=1e-12,
        )
        # idct inverts dct.
        assert_allclose(_np(ops, ops.idct(ops.dct(_x(ops, x), n)))[:, :n_in], x, atol=1e-12)


def _idct(ops):
    _dct(ops)


def _row_dots(ops):
    a, b = _rand(5, 3), _rand(5, 3, seed=1)
    assert_allclose(_np(ops, ops.row_dots(_x(ops, a), _x(ops, b))), (a * b).sum(axis=1),
                    rtol=1e-12)


def _log_softmax(ops):
    x = 30 * _rand(5, 4)  # large logits: no overflow
    assert_allclose(_np(ops, ops.log_softmax(_x(ops, x))),
                    scipy.special.log_softmax(x, axis=1), rtol=1e-12, atol=1e-12)


def _log_expit(ops):
    x = 50 * _rand(5, 4)
    assert_allclose(_np(ops, ops.log_expit(_x(ops, x))), scipy.special.log_expit(x),
                    rtol=1e-12, atol=1e-300)


def _vdot(ops):
    a, b = _rand(5, 4), _rand(5, 4, seed=1)
    value = ops.vdot(_x(ops, a), _x(ops, b))
    assert isinstance(value, float)
    assert value == pytest.approx(np.sum(a * b), rel=1e-12)
    # float32 inputs accumulate in float64: exact for sums float32 would round.
    big = np.full((1, 3), 2.0**24, dtype=np.float32)
    one = np.array([[1.0, 1.0, 1.0]], dtype=np.float32)
    sums = ops.vdot(ops.asarray(np.hstack([big, one])), ops.asarray(np.ones((1, 6), np.float32)))
    assert sums == 3 * 2.0**24 + 3


def _total(ops):
    x = _rand(5, 4)
    assert ops.total(_x(ops, x)) == pytest.approx(x.sum(), rel=1e-12)


def _sum_squares(ops):
    x = _rand(5, 4)
    assert ops.sum_squares(_x(ops, x)) == pytest.approx(np.sum(x**2), rel=1e-12)


def _total_sum_squares(ops):
    arrays = [_rand(5, 4), _rand(3, seed=1), _rand(2, 2, seed=2)]
    expected = sum(np.sum(a**2) for a in arrays)
    assert ops.total_sum_squares([_x(ops, a) for a in arrays]) == pytest.approx(expected, rel=1e-12)
    assert ops.total_sum_squares([]) == 0.0


def _device_total(ops):
    x = _rand(5, 4)
    assert float(ops.device_total(_x(ops, x))) == pytest.approx(x.sum(), rel=1e-12)


def _device_total_sum_squares(ops):
    arrays = [_rand(5, 4), _rand(3, seed=1)]
    expected = sum(np.sum(a**2) for a in arrays)
    total = ops.device_total_sum_squares([_x(ops, a) for a in arrays])
    assert float(total) == pytest.approx(expected, rel=1e-12)
    assert float(ops.device_total_sum_squares([])) == 0.0


def _loss_accumulator(ops):
    def loss(value):
        return ops.device_total(_x(ops, [value]))

    total = ops.loss_accumulator()
    for value, n in [(1.5, 4), (0.25, 4), (2.0, 2)]:
        assert total.add(loss(value), n)
    assert total.value() == 1.5 * 4 + 0.25 * 4 + 2.0 * 2
    # A non-finite loss is refused where it is known at once (the host), and
    # otherwise leaves the sum non-finite whatever follows it.
    for bad in [np.nan, np.inf]:
        total = ops.loss_accumulator()
        if total.add(loss(bad), 3):
            total.add(loss(-np.inf), 1)
            total.add(loss(1.0), 1)
            assert not np.isfinite(total.value())


def _dropout_masks(ops):
    rate = 0.25
    masks = ops.dropout_masks(np.random.default_rng(0))
    masks.start_epoch()
    out = _out(ops, (200, 100))
    assert masks.draw(out, rate) is out
    mask = _np(ops, out)
    kept = mask != 0
    assert_allclose(mask[kept], 1 / (1 - rate), rtol=1e-15)
    assert abs(kept.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / kept.size)
    if type(ops) is not TorchOps:
        # numpy's stream, drawn on the host.
        expected = (np.random.default_rng(0).random((200, 100)) >= rate) / (1 - rate)
        assert_array_equal(mask, expected)


def _shuffled_rows(ops):
    rng = np.random.RandomState(0)
    first, second = ops.shuffled_rows(rng, 50), ops.shuffled_rows(rng, 50)
    X = _rand(50, 2)
    for order in (first, second):
        taken = _np(ops, ops.xp.take(_x(ops, X), order, axis=0))
        assert_array_equal(np.sort(taken, axis=0), np.sort(X, axis=0))
    assert not np.array_equal(_np(ops, first), _np(ops, second))
    if type(ops) is not TorchOps:
        # numpy's stream, drawn on the host.
        rng = np.random.RandomState(0)
        assert_array_equal(_np(ops, first), rng.permutation(50))
        assert_array_equal(_np(ops, second), rng.permutation(50))


def _batch_totals(ops):
    x = _rand(11, 1)[:, 0]
    totals = ops.batch_totals(_x(ops, x), 4)
    assert isinstance(totals, list) and all(isinstance(t, float) for t in totals)
    assert_allclose(totals, [x[:4].sum(), x[4:8].sum(), x[8:].sum()], rtol=1e-6)
    assert_allclose(ops.batch_totals(_x(ops, x), 11), [x.sum()], rtol=1e-6)


def _all_finite(ops):
    a = _rand(3, 2)
    empty = _x(ops, np.zeros((0, 2)))
    assert ops.all_finite([_x(ops, a), _x(ops, a[0]), empty])
    assert ops.all_finite([]) and ops.all_finite([empty])
    for bad in [np.nan, np.inf, -np.inf]:
        b = a.copy()
        b[1, 1] = bad
        assert not ops.all_finite([_x(ops, a), _x(ops, b)])
        assert not ops.all_finite([_x(ops, b), empty, _x(ops, a)])
        # One value, the others large and finite: no end hides it.
        c = np.full((4, 5), -1e300)
        c[2, 3] = bad
        assert not ops.all_finite([_x(ops, c)])


def _index(ops):
    index = ops.index(np.array([2, 0], dtype=np.int32))
    X = _rand(3, 2)
    assert_array_equal(_np(ops, ops.xp.take(_x(ops, X), index, axis=0)), X[[2, 0]])


def _to_numpy(ops):
    a = _rand(3, 2)
    back = ops.to_numpy(_x(ops, a))
    assert isinstance(back, np.ndarray)
    assert_array_equal(back, a)


def _is_numpy(ops):
    assert ops.is_numpy() == (type(ops) is NumpyOps)


CASES = {
    "empty": _empty,
    "zeros_like": _zeros_like,
    "asarray": _asarray,
    "astype": _astype,
    "copy": _copy,
    "numpy_dtype": _numpy_dtype,
    "matmul": _matmul,
    "multiply": _binary("multiply", np.multiply),
    "divide": _binary("divide", np.divide),
    "sqrt": _elementwise("sqrt", lambda x: np.sqrt(np.abs(x))),
    "one_minus": _elementwise("one_minus", lambda x: 1 - x),
    "one_minus_square": _elementwise("one_minus_square", lambda x: 1 - x * x),
    "tanh": _elementwise("tanh", np.tanh),
    "expit": _elementwise("expit", scipy.special.expit),
    "relu": _elementwise("relu", lambda x: np.maximum(x, 0)),
    "exp": _elementwise("exp", np.exp),
    "copy_into": _copy_into,
    "add_scaled": _add_scaled,
    "add_decay": _add_decay,
    "foreach_scale": _foreach_scale,
    "foreach_add_scaled": _foreach_add_scaled,
    "foreach_add_product": _foreach_add_product,
    "foreach_add_quotient": _foreach_add_quotient,
    "foreach_add_scalar": _foreach_add_scalar,
    "foreach_sqrt": _foreach_sqrt,
    "step_counters": _step_counters,
    "fused_adam": _fused_adam,
    "affine": _affine,
    "column_sums": _column_sums,
    "column_dots": _column_dots,
    "take_rows": _take_rows,
    "row_buffer": _row_buffer_and_gather_rows,
    "gather_rows": _row_buffer_and_gather_rows,
    "rows": _rows,
    "mask_input": _mask_input,
    "scale_columns": _scale_columns,
    "to_dense": _to_dense,
    "write_as": _write_as,
    "step_scratch": _step_scratch_and_blocks,
    "step_blocks": _step_scratch_and_blocks,
    "compiled_step": _compiled_step,
    "zero_where_nonpositive": _zero_where_nonpositive,
    "dct": _dct,
    "idct": _idct,
    "row_dots": _row_dots,
    "log_softmax": _log_softmax,
    "log_expit": _log_expit,
    "vdot": _vdot,
    "total": _total,
    "sum_squares": _sum_squares,
    "total_sum_squares": _total_sum_squares,
    "device_total": _device_total,
    "device_total_sum_squares": _device_total_sum_squares,
    "loss_accumulator": _loss_accumulator,
    "dropout_masks": _dropout_masks,
    "shuffled_rows": _shuffled_rows,
    "batch_totals": _batch_totals,
    "all_finite": _all_finite,
    "index": _index,
    "to_numpy": _to_numpy,
    "is_numpy": _is_numpy,
}


def test_every_method_has_a_case():
    methods = {
        name for name, member in vars(ArrayOps).items()
        if not name.startswith("_") and callable(member)
    }
    for cls in (NumpyOps, TorchOps):
        extra = {n for n, m in vars(cls).items() if not n.startswith("_") and callable(m)}
        assert extra <= methods, f"{cls.__name__} adds {extra - methods}: give ArrayOps a default"
    assert methods - CONV_METHODS == set(CASES)


@pytest.mark.parametrize("method", sorted(CASES))
def test_method_matches_its_reference(ops, method):
    if method == "sqrt":
        # sqrt of negative entries is NaN: test on |x| (the case's reference).
        x = np.abs(_rand(4, 5))
        _check_into(ops, ops.sqrt, [x], np.sqrt(x))
        return
    CASES[method](ops)


def test_namespaces_resolve_to_their_ops():
    assert type(_ops("numpy")) is NumpyOps
    assert array_ops(sp.csr_matrix(np.eye(2))) is _ops("numpy")
    if _importable("torch"):
        torch_ops = _ops("torch")
        assert type(torch_ops) is TorchOps and torch_ops.foreach
        assert torch_ops.name == "torch"
    if _importable("array_api_strict"):
        strict = _ops("array_api_strict")
        assert type(strict) is ArrayOps and not strict.foreach
        assert strict.name == "array_api_strict"
    assert _ops("numpy").name == "numpy" and not _ops("numpy").foreach


@pytest.fixture
def sparse_pair():
    dense = _rand(6, 5)
    dense[np.abs(dense) < 0.8] = 0
    return sp.csr_matrix(dense), dense


def test_numpy_sparse_paths_equal_the_dense_ones(sparse_pair):
    X, dense = sparse_pair
    ops = _ops("numpy")
    W = _rand(5, 3, seed=1)
    out = np.empty((6, 3))
    assert_allclose(ops.matmul(X, W, out=out), dense @ W, rtol=1e-12)
    G = _rand(6, 5, seed=2)
    assert_allclose(ops.column_dots(G, X, out=np.empty(5)), np.einsum("ij,ij->j", G, dense),
                    rtol=1e-12)
    index = np.array([4, 1, 4])
    assert ops.row_buffer(X, 3) is None
    for rows in (ops.gather_rows(X, index, None), ops.rows(X, index)):
        assert sp.issparse(rows)
        assert_array_equal(rows.toarray(), dense[index])
    mask = (_rand(6, 5, seed=3) > 0) * 2.0
    masked = ops.mask_input(X, mask)
    assert sp.issparse(masked) and masked.format == "csr"
    assert_array_equal(masked.toarray(), dense * mask)
    d = _rand(5, seed=4)
    scaled = ops.scale_columns(X, d)
    assert sp.issparse(scaled) and scaled.format == "csr"
    assert_allclose(scaled.toarray(), dense * d, rtol=1e-15)
    assert_array_equal(ops.to_dense(X), dense)
    # X itself is never written to.
    assert_array_equal(X.toarray(), dense)
