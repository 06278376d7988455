"""Convolution and pooling layers against torch autograd, on numpy, torch and
array_api_strict.

The references are ``torch.nn.functional.conv2d`` / ``max_pool2d`` /
``avg_pool2d`` with autograd, in float64; the layers compute the same
quantities without it.
"""

import numpy as np
import pytest

from skdfa._conv import AvgPool2DLayer, Conv2DLayer, GlobalAvgPool2DLayer, MaxPool2DLayer

torch = pytest.importorskip("torch")
xps = pytest.importorskip("array_api_strict")

NAMESPACES = ["numpy", "torch", "array_api_strict"]

# (n, C_in, H, W, C_out, kernel, padding, stride)
CONV_SHAPES = [
    (3, 1, 6, 6, 2, 3, 0, 1),
    (2, 3, 7, 5, 4, 2, 1, 1),
    (4, 2, 5, 8, 3, 5, 2, 1),
    (2, 2, 4, 4, 3, 1, 0, 1),
    (1, 1, 3, 3, 2, 3, 3, 1),  # padding larger than kernel - 1
    (2, 4, 6, 6, 1, 6, 0, 1),  # one output position
    (2, 3, 8, 8, 4, 3, 1, 2),  # stride 2: every input row reached
    (2, 2, 9, 7, 3, 3, 0, 2),  # stride 2: the last column reached by no window
    (3, 2, 11, 10, 2, 5, 2, 3),  # stride 3 with padding: rows left out at the end
    (2, 1, 5, 5, 2, 2, 0, 4),  # stride above the kernel: inputs no window reads
]


def _to(namespace, array):
    if namespace == "torch":
        return torch.from_numpy(array)
    return xps.asarray(array) if namespace == "array_api_strict" else array


def _np(array):
    if isinstance(array, torch.Tensor):
        return array.numpy()
    return np.asarray(array)


def _conv_layer(shape, namespace, dtype=np.float64, seed=0):
    n, c, h, w, c_out, k, pad, stride = shape
    layer = Conv2DLayer((c, h, w), c_out, k, padding=pad, stride=stride)
    layer.initialize(np.random.RandomState(seed), "glorot", "tanh", dtype)
    layer.coef = _to(namespace, layer.coef)
    layer.intercept = _to(namespace, layer.intercept)
    return layer


def _reference(layer, X4, delta4):
    """Output, dLoss/dX, dLoss/dkernel, dLoss/dbias by autograd, with
    ``Loss = sum(out * delta)`` (so dLoss/dout = delta)."""
    X = torch.tensor(X4, requires_grad=True)
    kernel = torch.tensor(_np(layer.coef), dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(_np(layer.intercept), dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.conv2d(X, kernel, bias, stride=layer.stride, padding=layer.padding)
    (out * torch.tensor(delta4)).sum().backward()
    return out.detach().numpy(), X.grad.numpy(), kernel.grad.numpy(), bias.grad.numpy()


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv_forward_and_gradients_match_autograd(shape, namespace):
    rng = np.random.RandomState(1)
    layer = _conv_layer(shape, namespace)
    n = shape[0]
    X4 = rng.standard_normal((n, *layer.input_shape))
    delta4 = rng.standard_normal((n, *layer.output_shape))
    out_ref, dX_ref, dW_ref, db_ref = _reference(layer, X4, delta4)

    X = _to(namespace, X4.reshape(n, -1))
    X_before = _np(X).copy()
    out = _to(namespace, np.full((n, layer.n_out), np.nan))
    assert layer.forward(X, out, training=True) is out
    np.testing.assert_allclose(_np(out).reshape(out_ref.shape), out_ref, rtol=0, atol=1e-10)

    delta = _to(namespace, delta4.reshape(n, -1))
    dX = layer.backward(delta)
    assert dX.shape == (n, layer.n_in)
    np.testing.assert_allclose(_np(dX).reshape(dX_ref.shape), dX_ref, rtol=0, atol=1e-10)

    grads = [_to(namespace, np.full(p.shape, np.nan)) for p in layer.params]
    layer.gradients(X, delta, grads)
    np.testing.assert_allclose(_np(grads[0]), dW_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(_np(grads[1]), db_ref, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(_np(X), X_before)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_backward_through_a_given_kernel(namespace, stride):
    # fa / sign-symmetry / kp pass the delta back through a feedback kernel.
    shape = (2, 3, 6, 5, 4, 3, 1, stride)
    layer = _conv_layer(shape, namespace)
    rng = np.random.RandomState(2)
    feedback = rng.standard_normal(layer.kernel_shape)
    delta4 = rng.standard_normal((2, *layer.output_shape))
    dX = layer.backward(_to(namespace, delta4.reshape(2, -1)), _to(namespace, feedback))
    X = torch.zeros((2, *layer.input_shape), dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.conv2d(X, torch.tensor(feedback), stride=stride, padding=1)
    (out * torch.tensor(delta4)).sum().backward()
    np.testing.assert_allclose(_np(dX).reshape(X.shape), X.grad.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_conv_writes_into_rows_of_a_wider_buffer(namespace):
    # The network hands the layers row slices of (batch_size, width) buffers.
    shape = (3, 2, 5, 5, 3, 3, 1, 2)
    layer = _conv_layer(shape, namespace)
    X4 = np.random.RandomState(3).standard_normal((3, *layer.input_shape))
    buffer = _to(namespace, np.zeros((5, layer.n_out)))
    layer.forward(_to(namespace, X4.reshape(3, -1)), buffer[:3, :])
    out_ref = _reference(layer, X4, np.zeros((3, *layer.output_shape)))[0]
    np.testing.assert_allclose(_np(buffer)[:3].reshape(out_ref.shape), out_ref, atol=1e-10)
    assert not _np(buffer)[3:].any()


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_conv_float32_stays_float32(namespace):
    shape = (2, 2, 6, 6, 3, 3, 1, 2)
    layer = _conv_layer(shape, namespace, dtype=np.float32)
    rng = np.random.RandomState(4)
    X = _to(namespace, rng.standard_normal((2, layer.n_in)).astype(np.float32))
    out = _to(namespace, np.empty((2, layer.n_out), np.float32))
    layer.forward(X, out, training=True)
    delta = _to(namespace, rng.standard_normal((2, layer.n_out)).astype(np.float32))
    grads = [_to(namespace, np.empty(p.shape, np.float32)) for p in layer.params]
    layer.gradients(X, delta, grads)
    arrays = [out, layer.backward(delta), *grads]
    assert all(_np(a).dtype == np.float32 for a in arrays)
    X64 = _np(X).astype(np.float64).reshape(2, *layer.input_shape)
    out_ref = _reference(layer, X64, np.zeros((2, *layer.output_shape)))[0]
    np.testing.assert_allclose(_np(out).reshape(out_ref.shape), out_ref, rtol=1e-5, atol=1e-5)


# (n, C, H, W, pool, stride): side by side (stride None), overlapping (3x3 at
# stride 2, Nøkland's), gaps between windows, and rows no window reaches.
POOL_SHAPES = [
    (3, 2, 4, 4, 2, None), (2, 3, 7, 5, 2, None), (2, 1, 6, 9, 3, None), (1, 2, 3, 3, 1, None),
    (2, 3, 9, 9, 3, 2), (2, 2, 8, 7, 3, 2), (2, 2, 7, 7, 2, 3), (2, 1, 6, 6, 3, 1),
]


def _pool_layer(kind, shape):
    n, c, h, w, size, stride = shape
    if kind == "global":
        return GlobalAvgPool2DLayer((c, h, w))
    return {"max": MaxPool2DLayer, "avg": AvgPool2DLayer}[kind]((c, h, w), size, stride=stride)


def _pool_reference(kind, shape, X):
    _, _, _, w, size, stride = shape
    functional = torch.nn.functional
    if kind == "global":  # biotorch's CIFAR LeNet, on square and other maps
        return X.mean(dim=(2, 3), keepdim=True)
    pool = {"max": functional.max_pool2d, "avg": functional.avg_pool2d}[kind]
    return pool(X, size, stride)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("shape", POOL_SHAPES)
@pytest.mark.parametrize("kind", ["max", "avg", "global"])
def test_pooling_matches_autograd(kind, shape, namespace):
    n, c, h, w, size, stride = shape
    layer = _pool_layer(kind, shape)
    rng = np.random.RandomState(5)
    X4 = rng.standard_normal((n, c, h, w))
    delta4 = rng.standard_normal((n, *layer.output_shape))
    X_ref = torch.tensor(X4, requires_grad=True)
    out_ref = _pool_reference(kind, shape, X_ref)
    (out_ref * torch.tensor(delta4)).sum().backward()

    X = _to(namespace, X4.reshape(n, -1))
    X_before = X4.reshape(n, -1).copy()
    out = _to(namespace, np.full((n, layer.n_out), np.nan))
    assert layer.forward(X, out, training=True) is out
    np.testing.assert_allclose(
        _np(out).reshape(out_ref.shape), out_ref.detach().numpy(), rtol=0, atol=1e-14
    )
    dX = layer.backward(_to(namespace, delta4.reshape(n, -1)))
    assert dX.shape == (n, layer.n_in)
    np.testing.assert_allclose(
        _np(dX).reshape(X4.shape), X_ref.grad.numpy(), rtol=0, atol=1e-14
    )
    np.testing.assert_array_equal(_np(X), X_before)
    assert layer.params == () and layer.n_params == 0 and layer.activated is False
    layer.gradients(X, None, [])
    assert getattr(layer, "_input", None) is None


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("kind", ["max", "avg", "global"])
def test_pooling_float32_stays_float32_in_a_wider_buffer(kind, namespace):
    layer = _pool_layer(kind, (2, 2, 7, 7, 3, 2))
    rng = np.random.RandomState(6)
    X = _to(namespace, rng.standard_normal((2, layer.n_in)).astype(np.float32))
    buffer = _to(namespace, np.zeros((4, layer.n_out), np.float32))
    layer.forward(X, buffer[:2, :], training=True)
    assert _np(buffer)[:2].any() and not _np(buffer)[2:].any()
    dX = layer.backward(_to(namespace, rng.standard_normal((2, layer.n_out)).astype(np.float32)))
    assert _np(buffer).dtype == np.float32 and _np(dX).dtype == np.float32


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_overlapping_max_pool_sums_the_deltas_of_a_shared_maximum(namespace):
    # 3x3 windows at stride 2 share their middle column: a maximum there is
    # both windows' and gets both deltas (as torch's max_pool2d backward).
    layer = MaxPool2DLayer((1, 3, 5), 3, stride=2)
    X = np.zeros((1, 15))
    X[0, 7] = 1.0  # row 1, column 2
    out = _to(namespace, np.empty((1, 2)))
    layer.forward(_to(namespace, X), out, training=True)
    dX = _np(layer.backward(_to(namespace, np.array([[5.0, 7.0]]))))
    expected = np.zeros((1, 15))
    expected[0, 7] = 12.0
    np.testing.assert_array_equal(dX, expected)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_max_pool_ties_go_to_the_first_maximum(namespace):
    # After a ReLU, whole windows are often 0: the delta goes to one position.
    layer = MaxPool2DLayer((1, 2, 4), 2)
    X = _to(namespace, np.array([[0.0, 0.0, 1.0, 3.0, 0.0, 0.0, 3.0, 2.0]]))
    out = _to(namespace, np.empty((1, 2)))
    layer.forward(X, out, training=True)
    dX = layer.backward(_to(namespace, np.array([[5.0, 7.0]])))
    np.testing.assert_array_equal(_np(dX), [[5.0, 0, 0, 7.0, 0, 0, 0, 0]])


def test_kernel_or_pool_that_does_not_fit_names_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r"conv_layers\[1\].*5x5.*\(6, 4, 4\)"):
        Conv2DLayer((6, 4, 4), 16, 5, name="conv_layers[1]")
    with pytest.raises(ValueError, match=r"pool.*3x3.*\(6, 2, 2\)"):
        MaxPool2DLayer((6, 2, 2), 3, name="pool 0")
    with pytest.raises(ValueError, match=r"pool 1.*3x3.*\(6, 8, 2\)"):
        AvgPool2DLayer((6, 8, 2), 3, stride=2, name="pool 1")
    # padding makes it fit
    assert Conv2DLayer((6, 4, 4), 16, 5, padding=1).output_shape == (16, 2, 2)


def test_glorot_bound_uses_the_kernel_fans():
    layer = Conv2DLayer((3, 8, 8), 4, 3)
    layer.initialize(np.random.RandomState(0), "glorot", "relu", np.float64)
    bound = np.sqrt(6 / (3 * 9 + 4 * 9))
    assert np.abs(layer.coef).max() <= bound
    assert np.abs(layer.coef).max() > 0.9 * bound
    assert layer.n_params == 4 * 3 * 9 + 4


# (C_in, H, W, C_out, kernel, padding, stride) of the convolution above: the
# border, where fewer kernel offsets cover an input position, padding 0, 1, 2,
# and strides (input positions covered by fewer offsets, or by none).
CONSTANT_MAP_SHAPES = [
    (2, 5, 5, 3, 3, 0, 1),
    (2, 5, 4, 3, 3, 1, 1),
    (3, 4, 6, 2, 2, 1, 1),
    (1, 3, 3, 4, 3, 2, 1),
    (2, 4, 4, 5, 1, 0, 1),
    (2, 8, 7, 3, 3, 1, 2),
    (1, 9, 9, 2, 2, 0, 3),
    (3, 32, 32, 4, 5, 2, 2),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", CONSTANT_MAP_SHAPES)
def test_constant_map_projection_is_conv2d_input_of_the_repeated_error(shape, dtype):
    # biotorch's DFA conv layer: its input gradient is conv2d_input of the
    # error repeated over its output map, through a (n_outputs, C_in, k, k)
    # kernel; DFA's conv_feedback="kernel" replaces it by e @ D.
    c, h, w, c_out, k, pad, stride = shape
    conv = Conv2DLayer((c, h, w), c_out, k, padding=pad, stride=stride)
    n_outputs, n = 4, 5
    rng = np.random.RandomState(0)
    kernel = rng.standard_normal((n_outputs, c, k, k)).astype(dtype)
    D = conv.constant_map_projection(kernel)
    assert D.shape == (n_outputs, c * h * w) and D.dtype == dtype
    e = rng.standard_normal((n, n_outputs))
    repeated = torch.tensor(e)[:, :, None, None].expand(n, n_outputs, *conv.output_shape[1:])
    expected = torch.nn.grad.conv2d_input(
        (n, c, h, w), torch.tensor(kernel, dtype=torch.float64), repeated, stride=stride,
        padding=pad,
    )
    atol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(e @ D, expected.reshape(n, -1).numpy(), rtol=0, atol=atol)
