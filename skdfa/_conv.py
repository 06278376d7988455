"""Convolution and pooling layers of the engine.

They keep the layer interface of ``_layers.py``: inputs (n_samples, n_in) and
outputs (n_samples, n_out), flattened in (C, H, W) order as torch flattens,
so the network's buffers, activations and the direct rules' projections
``e @ B`` work on them unchanged. Each layer reads and writes (n, C, H, W)
views of those rows; ``input_shape`` and ``output_shape`` give the maps. The
array operations (im2col and one matrix product on numpy, ``conv2d`` and its
gradient functions on torch, a loop over kernel offsets in other array API
namespaces) are methods of the ops layer (``_array_ops``).

Strides, output sizes and tie-breaking are torch's (``conv2d``,
``max_pool2d``, ``avg_pool2d``: floor mode, no padding for pooling).

A convolution is followed by the network's activation; a pooling is not
(``activated = False``): LeNet's block is conv -> activation -> pool.
"""

import numpy as np

from ._array_ops import array_ops
from ._layers import GLOROT_INITS, Layer, _glorot_bound, _glorot_intercept


def _shape_error(name, what, input_shape, size, padding=0):
    return ValueError(
        f"{name}: a {what} of size {size}x{size}"
        + (f" with padding={padding}" if padding else "")
        + f" does not fit its input of shape (C, H, W) = {tuple(input_shape)}."
    )


def _output_side(side, size, stride, padding=0):
    """torch's output size: the windows that fit, floor mode."""
    return (side + 2 * padding - size) // stride + 1


class Conv2DLayer(Layer):
    """Convolution ``A = conv(X, coef) + intercept`` with zero padding, as
    torch's ``conv2d``.

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
    stride : int, default=1
        Step between the kernel's positions, in both directions; the output
        has ``(H + 2 padding - kernel_size) // stride + 1`` rows (rows and
        columns no position reaches are left out, as torch does).
    name : str, default="Conv2DLayer"
        How error messages call the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from skdfa._conv import Conv2DLayer
    >>> conv = Conv2DLayer((3, 32, 32), 96, 5, padding=2, stride=2)
    >>> conv.output_shape
    (96, 16, 16)
    >>> conv.initialize(np.random.RandomState(0), "glorot", "relu", np.float32)
    >>> conv.forward(np.ones((2, conv.n_in), np.float32),
    ...              np.empty((2, conv.n_out), np.float32)).shape
    (2, 24576)
    """

    kind = "conv2d"
    param_names = ("coef", "intercept")
    regularized = (True, False)
    activated = True
    weights_index = 0

    def __init__(self, input_shape, out_channels, kernel_size, padding=0, stride=1,
                 name="Conv2DLayer"):
        channels, height, width = input_shape
        h_out = _output_side(height, kernel_size, stride, padding)
        w_out = _output_side(width, kernel_size, stride, padding)
        if h_out < 1 or w_out < 1:
            raise _shape_error(name, "kernel", input_shape, kernel_size, padding)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = (int(out_channels), h_out, w_out)
        self.kernel_shape = (int(out_channels), channels, kernel_size, kernel_size)
        self.padding = int(padding)
        self.stride = int(stride)
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

    @property
    def forward_macs(self):
        """Multiply-adds per sample of the convolution (``skdfa bench``): one
        kernel's worth per output value."""
        return self.n_out * int(np.prod(self.kernel_shape[1:]))

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
        # A sparse batch of X is densified, one batch at a time.
        return ops.xp.reshape(ops.to_dense(X), (X.shape[0], *shape))

    def forward(self, X, out, training=False):
        ops = self.array_ops(self.coef)
        X = self._maps(X, self.input_shape, ops)
        return ops.write_as(
            out, (out.shape[0], *self.output_shape),
            lambda maps: ops.conv2d(X, self.coef, self.intercept, self.padding, maps,
                                    self.stride),
        )

    def backward(self, delta, feedback=None):
        """dLoss/dX through ``feedback`` (a kernel shaped like the layer's own,
        for the feedback-alignment rules), by default the layer's own kernel."""
        kernel = self.coef if feedback is None else feedback
        ops = self.array_ops(kernel)
        dX = ops.conv2d_input_grad(
            self._maps(delta, self.output_shape, ops), kernel, self.padding, self.stride,
            self.input_shape[1:],
        )
        return ops.xp.reshape(dX, (delta.shape[0], self.n_in))

    def constant_map_projection(self, kernel):
        """The matrix ``D`` of shape ``(n_outputs, n_in)`` such that ``e @ D``
        is the input gradient through ``kernel`` (``(n_outputs, C_in, kh,
        kw)``) of ``e`` repeated at every position of the output map: row
        ``k`` is that gradient for the ``k``-th unit vector.

        The direct rules' ``conv_feedback="kernel"`` form (biotorch's DFA)
        sends ``e`` into the layer's input this way; ``D[k, c, i, j]`` sums
        the ``kernel[k, c, u, v]`` whose output position ``((i - u + padding)
        / stride, (j - v + padding) / stride)`` is a whole position of the
        output map.

        Parameters
        ----------
        kernel : array of shape (n_outputs, C_in, kh, kw)
            A feedback kernel, in the namespace that ``D`` is wanted in.

        Returns
        -------
        D : array of shape (n_outputs, n_in)

        Examples
        --------
        >>> import numpy as np
        >>> from skdfa._conv import Conv2DLayer
        >>> conv = Conv2DLayer((1, 3, 3), 4, 2, stride=2)
        >>> D = conv.constant_map_projection(np.ones((2, 1, 2, 2)))
        >>> D[0].reshape(3, 3)
        array([[1., 1., 0.],
               [1., 1., 0.],
               [0., 0., 0.]])
        """
        n_outputs = kernel.shape[0]
        _, height, width = self.output_shape
        ops = array_ops(kernel)
        eye = ops.asarray(np.eye(n_outputs, dtype=ops.numpy_dtype(kernel.dtype)))
        unit_maps = ops.xp.broadcast_to(
            ops.xp.reshape(eye, (n_outputs, n_outputs, 1, 1)), (n_outputs, n_outputs, height, width)
        )
        D = ops.conv2d_input_grad(
            unit_maps, kernel, self.padding, self.stride, self.input_shape[1:]
        )
        return ops.xp.reshape(D, (n_outputs, self.n_in))

    def weight_matrix(self):
        """None: the layer's linear map is not formed (the direct rules'
        weight alignment is NaN below a convolution)."""
        return None

    def gradients(self, X, delta, grads):
        coef_grad, intercept_grad = grads
        ops = self.array_ops(self.coef)
        ops.conv2d_weight_grad(
            self._maps(X, self.input_shape, ops), self._maps(delta, self.output_shape, ops),
            self.padding, coef_grad, intercept_grad, self.stride,
        )


class _Pool2D(Layer):
    """What the pooling layers share: no parameters, no activation after them,
    outputs kept as (n_samples, n_out) rows in (C, H, W) order."""

    param_names = ()
    regularized = ()
    activated = False
    params = ()
    n_params = 0
    forward_macs = 0  # element-wise
    weights = None
    weights_index = None
    feedback_shape = None

    def _set_shapes(self, input_shape, output_shape):
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = tuple(int(s) for s in output_shape)
        self.n_in = int(np.prod(self.input_shape))
        self.n_out = int(np.prod(self.output_shape))

    def initialize(self, rng, weight_init, activation, dtype):
        """Nothing to draw."""

    def as_output(self, flat):
        return flat

    def weight_matrix(self):
        return None

    def gradients(self, X, delta, grads):
        """No parameters."""

    def _pool(self, X, out, pool):
        """``pool(ops, maps, pooled)``: X's rows seen as maps, pooled into ``out``."""
        ops = self.array_ops(X)
        maps = ops.xp.reshape(X, (X.shape[0], *self.input_shape))
        return ops.write_as(
            out, (out.shape[0], *self.output_shape), lambda pooled: pool(ops, maps, pooled)
        )

    def _unpool(self, delta, input_grad):
        """``input_grad(ops, delta_maps)``, (n, C, H, W), as rows."""
        ops = self.array_ops(delta)
        n = delta.shape[0]
        dX = input_grad(ops, ops.xp.reshape(delta, (n, *self.output_shape)))
        return ops.xp.reshape(dX, (n, self.n_in))


class _WindowPool2D(_Pool2D):
    """Pooling over ``pool_size x pool_size`` windows at ``stride``."""

    def __init__(self, input_shape, pool_size, stride=None, name=None):
        channels, height, width = input_shape
        stride = pool_size if stride is None else stride
        if pool_size > height or pool_size > width:
            raise _shape_error(name or type(self).__name__, "pool", input_shape, pool_size)
        self._set_shapes(input_shape, (
            channels, _output_side(height, pool_size, stride), _output_side(width, pool_size, stride)
        ))
        self.pool_size = int(pool_size)
        self.stride = int(stride)


class MaxPool2DLayer(_WindowPool2D):
    """Max pooling over ``pool_size x pool_size`` windows at ``stride``, as
    torch's ``max_pool2d`` (no padding, floor mode): windows overlap when
    ``stride < pool_size`` (Nøkland's 3x3 at stride 2); rows and columns that
    no window reaches are dropped. No parameters and no activation after it.

    The training forward pass keeps its input; ``backward`` routes the delta
    to each window's maximum (the first one on ties, as torch), summed where
    overlapping windows share it.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    pool_size : int
    stride : int or None, default=None
        None is ``pool_size``: windows side by side.
    name : str, default="MaxPool2DLayer"
        How error messages call the layer.

    Examples
    --------
    >>> from skdfa._conv import MaxPool2DLayer
    >>> MaxPool2DLayer((96, 32, 32), 3, stride=2).output_shape
    (96, 15, 15)
    """

    kind = "maxpool2d"

    def __init__(self, input_shape, pool_size, stride=None, name="MaxPool2DLayer"):
        super().__init__(input_shape, pool_size, stride, name)
        self._input = None

    def forward(self, X, out, training=False):
        self._pool(X, out, lambda ops, maps, pooled: ops.max_pool2d(
            maps, self.pool_size, pooled, self.stride
        ))
        if training:
            # Where the maxima are is found by ``backward``, which only the
            # layer-by-layer rules call: the direct rules never pay for it.
            self._input = X
        return out

    def backward(self, delta, feedback=None):
        """dLoss/dX: ``delta`` at the maxima of the last training forward pass
        (there are no weights for ``feedback`` to stand in for)."""
        n = delta.shape[0]
        return self._unpool(delta, lambda ops, maps: ops.max_unpool2d(
            maps, ops.xp.reshape(self._input[:n, ...], (n, *self.input_shape)),
            self.pool_size, self.stride,
        ))

    def gradients(self, X, delta, grads):
        """No parameters; releases the batch's input (the batch is done)."""
        self._input = None


class AvgPool2DLayer(_WindowPool2D):
    """Average pooling over ``pool_size x pool_size`` windows at ``stride``,
    as torch's ``avg_pool2d`` (no padding, floor mode). No parameters and no
    activation after it; ``backward`` spreads each window's delta evenly
    over the window.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    pool_size : int
    stride : int or None, default=None
        None is ``pool_size``: windows side by side.
    name : str, default="AvgPool2DLayer"
        How error messages call the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from skdfa._conv import AvgPool2DLayer
    >>> pool = AvgPool2DLayer((1, 4, 4), 2)
    >>> pool.forward(np.arange(16.0).reshape(1, 16), np.empty((1, 4)))
    array([[ 2.5,  4.5, 10.5, 12.5]])
    """

    kind = "avgpool2d"

    def __init__(self, input_shape, pool_size, stride=None, name="AvgPool2DLayer"):
        super().__init__(input_shape, pool_size, stride, name)

    def forward(self, X, out, training=False):
        return self._pool(X, out, lambda ops, maps, pooled: ops.avg_pool2d(
            maps, self.pool_size, pooled, self.stride
        ))

    def backward(self, delta, feedback=None):
        """dLoss/dX: each window's delta shared evenly by its inputs."""
        return self._unpool(delta, lambda ops, maps: ops.avg_pool2d_input_grad(
            maps, self.pool_size, self.stride, self.input_shape[1:]
        ))


class GlobalAvgPool2DLayer(_Pool2D):
    """Global average pooling: the mean of each map, ``(C, H, W) -> (C, 1, 1)``
    (biotorch's CIFAR LeNet: ``F.avg_pool2d(out, out.size()[3])`` on its
    square maps). No parameters and no activation after it.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.

    Examples
    --------
    >>> from skdfa._conv import GlobalAvgPool2DLayer
    >>> GlobalAvgPool2DLayer((128, 4, 4)).output_shape
    (128, 1, 1)
    """

    kind = "globalavgpool2d"

    def __init__(self, input_shape):
        self._set_shapes(input_shape, (input_shape[0], 1, 1))

    def forward(self, X, out, training=False):
        return self._pool(X, out, lambda ops, maps, pooled: ops.global_avg_pool2d(maps, pooled))

    def backward(self, delta, feedback=None):
        """dLoss/dX: each map's delta shared evenly by its positions."""
        return self._unpool(delta, lambda ops, maps: ops.global_avg_pool2d_input_grad(
            maps, self.input_shape[1:]
        ))
