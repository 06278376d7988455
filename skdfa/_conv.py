"""Convolution and max-pooling layers of the engine.

They keep the layer interface of ``_layers.py``: inputs (n_samples, n_in) and
outputs (n_samples, n_out), flattened in (C, H, W) order as torch flattens,
so the network's buffers, activations and the direct rules' projections
``e @ B`` work on them unchanged. Each layer reads and writes (n, C, H, W)
views of those rows; ``input_shape`` and ``output_shape`` give the maps. The
array operations (im2col and one matrix product on numpy, ``conv2d`` and its
gradient functions on torch, a loop over kernel offsets in other array API
namespaces) are methods of the ops layer (``_array_ops``).

A convolution is followed by the network's activation; a max pooling is not
(``activated = False``): LeNet's block is conv -> activation -> pool.
"""

import numpy as np
import scipy.sparse as sp

from ._layers import GLOROT_INITS, Layer, _glorot_bound, _glorot_intercept


def _write_into(out, shape, compute, ops):
    """Call ``compute(maps)`` with ``out`` (rows of a buffer) seen as ``shape``,
    so that what it writes lands in ``out``: a view on numpy and torch (a
    copy would lose the writes), a temporary of ``ops`` copied back elsewhere."""
    if isinstance(out, np.ndarray):
        view = out.view()
        view.shape = shape  # raises where only a copy could reshape
        compute(view)
    elif hasattr(out, "view") and hasattr(out, "untyped_storage"):  # torch
        compute(out.view(shape))
    else:
        maps = ops.empty(shape, out.dtype)
        compute(maps)
        out[...] = ops.xp.reshape(maps, out.shape)
    return out


def _shape_error(name, what, input_shape, size, padding=0):
    return ValueError(
        f"{name}: a {what} of size {size}x{size}"
        + (f" with padding={padding}" if padding else "")
        + f" does not fit its input of shape (C, H, W) = {tuple(input_shape)}."
    )


class Conv2DLayer(Layer):
    """Convolution ``A = conv(X, coef) + intercept``, stride 1, zero padding.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C_in, H, W)`` of the input map.
    out_channels : int
        ``C_out``.
    kernel_size : int
        Square kernels of ``kernel_size x kernel_size``.
    padding : int, default=0
        Zeros added on every side of the input.
    name : str, default="Conv2DLayer"
        How error messages call the layer.
    """

    kind = "conv2d"
    param_names = ("coef", "intercept")
    regularized = (True, False)
    activated = True
    weights_index = 0

    def __init__(self, input_shape, out_channels, kernel_size, padding=0, name="Conv2DLayer"):
        channels, height, width = input_shape
        h_out = height + 2 * padding - kernel_size + 1
        w_out = width + 2 * padding - kernel_size + 1
        if h_out < 1 or w_out < 1:
            raise _shape_error(name, "kernel", input_shape, kernel_size, padding)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = (int(out_channels), h_out, w_out)
        self.kernel_shape = (int(out_channels), channels, kernel_size, kernel_size)
        self.padding = int(padding)
        self.n_in = int(np.prod(self.input_shape))
        self.n_out = int(np.prod(self.output_shape))

    @property
    def params(self):
        return [self.coef, self.intercept]

    @property
    def weights(self):
        return self.coef

    @property
    def feedback_shape(self):
        """A feedback kernel is shaped like the forward one."""
        return self.kernel_shape

    @property
    def feedback_width(self):
        """The kernel's fan-in, ``C_in kh kw``: the terms each input position
        of ``backward`` sums, as a dense layer's ``n_in``."""
        return self.fans()[0]

    def as_output(self, flat):
        """Deltas and outputs stay (n_samples, n_out) rows, in (C, H, W) order."""
        return flat

    def as_feedback(self, W):
        return W

    def backward_weights(self):
        return self.coef

    @property
    def n_params(self):
        return int(np.prod(self.kernel_shape)) + self.kernel_shape[0]

    def fans(self):
        """``(fan_in, fan_out)`` as torch counts them for a kernel."""
        out_channels, in_channels, kh, kw = self.kernel_shape
        return in_channels * kh * kw, out_channels * kh * kw

    def initialize(self, rng, weight_init, activation, dtype):
        """Draw ``coef`` and ``intercept`` as ``DenseLayer`` does, with the
        kernel's fans: ``fan_in = C_in kh kw``, ``fan_out = C_out kh kw``."""
        n_out = self.kernel_shape[0]
        if weight_init in GLOROT_INITS:
            bound = _glorot_bound(*self.fans(), activation)
            self.coef = rng.uniform(-bound, bound, self.kernel_shape).astype(dtype, copy=False)
            self.intercept = _glorot_intercept(rng, weight_init, bound, n_out, dtype)
        elif weight_init == "normal":
            self.coef = rng.standard_normal(self.kernel_shape).astype(dtype, copy=False)
            self.intercept = np.zeros(n_out, dtype=dtype)
        else:
            self.coef = np.zeros(self.kernel_shape, dtype=dtype)
            self.intercept = np.zeros(n_out, dtype=dtype)

    def _maps(self, X, shape, ops):
        if sp.issparse(X):  # a sparse batch of X: densified, one batch at a time
            X = X.toarray()
        return ops.xp.reshape(X, (X.shape[0], *shape))

    def forward(self, X, out, training=False):
        ops = self.array_ops(self.coef)
        X = self._maps(X, self.input_shape, ops)
        return _write_into(
            out, (out.shape[0], *self.output_shape),
            lambda maps: ops.conv2d(X, self.coef, self.intercept, self.padding, maps), ops,
        )

    def backward(self, delta, feedback=None):
        """dLoss/dX through ``feedback`` (a kernel shaped like the layer's own,
        for the feedback-alignment rules), by default the layer's own kernel."""
        kernel = self.coef if feedback is None else feedback
        ops = self.array_ops(kernel)
        dX = ops.conv2d_input_grad(
            self._maps(delta, self.output_shape, ops), kernel, self.padding
        )
        return ops.xp.reshape(dX, (delta.shape[0], self.n_in))

    def weight_matrix(self):
        """None: the layer's linear map is not formed (the direct rules'
        weight alignment is NaN below a convolution)."""
        return None

    def gradients(self, X, delta, grads):
        coef_grad, intercept_grad = grads
        ops = self.array_ops(self.coef)
        ops.conv2d_weight_grad(
            self._maps(X, self.input_shape, ops), self._maps(delta, self.output_shape, ops),
            self.padding, coef_grad, intercept_grad,
        )


class MaxPool2DLayer(Layer):
    """Max pooling over ``pool_size x pool_size`` windows at stride ``pool_size``
    (torch's ``max_pool2d`` default); rows and columns that do not fill a
    window are dropped. No parameters and no activation after it.

    The training forward pass keeps its input; ``backward`` routes the delta
    to each window's maximum (the first one on ties, as torch).

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    pool_size : int
    name : str, default="MaxPool2DLayer"
        How error messages call the layer.
    """

    kind = "maxpool2d"
    param_names = ()
    regularized = ()
    activated = False
    params = ()
    n_params = 0
    weights = None
    weights_index = None
    feedback_shape = None

    def __init__(self, input_shape, pool_size, name="MaxPool2DLayer"):
        channels, height, width = input_shape
        if pool_size > height or pool_size > width:
            raise _shape_error(name, "pool", input_shape, pool_size)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = (channels, height // pool_size, width // pool_size)
        self.pool_size = int(pool_size)
        self.n_in = int(np.prod(self.input_shape))
        self.n_out = int(np.prod(self.output_shape))
        self._input = None

    def initialize(self, rng, weight_init, activation, dtype):
        """Nothing to draw."""

    def as_output(self, flat):
        return flat

    def forward(self, X, out, training=False):
        ops = self.array_ops(X)
        maps = ops.xp.reshape(X, (X.shape[0], *self.input_shape))
        _write_into(
            out, (out.shape[0], *self.output_shape),
            lambda pooled: ops.max_pool2d(maps, self.pool_size, pooled), ops,
        )
        if training:
            # Where the maxima are is found by ``backward``, which only the
            # layer-by-layer rules call: the direct rules never pay for it.
            self._input = X
        return out

    def backward(self, delta, feedback=None):
        """dLoss/dX: ``delta`` at the maxima of the last training forward pass
        (there are no weights for ``feedback`` to stand in for)."""
        ops = self.array_ops(delta)
        n = delta.shape[0]
        dX = ops.max_unpool2d(
            ops.xp.reshape(delta, (n, *self.output_shape)),
            ops.xp.reshape(self._input[:n, ...], (n, *self.input_shape)),
            self.pool_size,
        )
        return ops.xp.reshape(dX, (n, self.n_in))

    def weight_matrix(self):
        return None

    def gradients(self, X, delta, grads):
        """No parameters; releases the batch's input (the batch is done)."""
        self._input = None
