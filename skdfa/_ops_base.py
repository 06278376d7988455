"""The base of the engine's array operations: :class:`ArrayOps`, for any
array API namespace, and what the numpy and torch parts share.

The engine is written once, against the array API (in-place operators such
as ``x += y`` are part of it). The few operations whose fast form differs
between namespaces (writing into a preallocated buffer, fused optimizer
steps, convolutions) are methods of an ``ArrayOps`` object, chosen once from
the arrays' namespace by :func:`skdfa._array_ops.array_ops`. ``ArrayOps``
itself serves any array API namespace (array_api_strict, CuPy, ...): a
result is computed, then copied into its buffer. ``_numpy_ops.py`` and
``_torch_ops.py`` override what numpy's ``out=`` arguments and torch's
kernels do faster.

Every method that takes ``out`` writes its result there and returns it.
"""

import numpy as np
from sklearn.utils._array_api import _convert_to_numpy


class ArrayOps:
    """Operations in any array API namespace ``xp`` on ``device``."""

    #: Whether the namespace has the multi-tensor primitives (``foreach_*``,
    #: ``fused_adam``: torch only) that the optimizers then step every
    #: parameter at once with, rather than one parameter at a time.
    foreach = False

    def __init__(self, xp, device):
        self.xp = xp
        self.device = device

    @property
    def name(self):
        return self.xp.__name__.split(".")[-1]

    # -- creation and transfer ---------------------------------------------------

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype, device=self.device)

    def zeros_like(self, x):
        return self.xp.zeros(x.shape, dtype=x.dtype, device=self.device)

    def asarray(self, array, dtype=None):
        """``array`` (numpy or this namespace) here, on this device."""
        if isinstance(array, np.ndarray) and dtype is not None:
            array = array.astype(_numpy_dtype(dtype), copy=False)
        return self.xp.asarray(array, dtype=dtype, device=self.device)

    def astype(self, x, dtype):
        return x if x.dtype == dtype else self.xp.astype(x, dtype)

    def copy(self, x):
        return self.xp.asarray(x, copy=True)

    def numpy_dtype(self, dtype):
        return _numpy_dtype(dtype)

    # -- computations into buffers -------------------------------------------------

    def matmul(self, a, b, out):
        out[...] = a @ b
        return out

    def multiply(self, a, b, out):
        out[...] = a * b
        return out

    def divide(self, a, b, out):
        out[...] = a / b
        return out

    def sqrt(self, x, out):
        out[...] = self.xp.sqrt(x)
        return out

    def one_minus(self, x, out):
        out[...] = 1 - x
        return out

    def one_minus_square(self, x, out):
        """``1 - x * x`` (the tanh derivative from its output)."""
        out[...] = 1 - x * x
        return out

    def tanh(self, x, out):
        out[...] = self.xp.tanh(x)
        return out

    def expit(self, x, out):
        out[...] = 1 / (1 + self.xp.exp(-x))
        return out

    def relu(self, x, out):
        out[...] = self.xp.where(x > 0, x, self.xp.zeros_like(x))
        return out

    def exp(self, x, out):
        out[...] = self.xp.exp(x)
        return out

    def copy_into(self, out, x):
        out[...] = x
        return out

    def add_scaled(self, out, x, scale, scratch=None):
        """``out += scale * x``, in place; ``scratch``, shaped like ``out``,
        may hold the product (numpy)."""
        out += scale * x

    def add_decay(self, grads, weight_decay, sources):
        """``grads[i] += weight_decay[i] * sources[i]`` where the coefficient is
        not zero, in place: the L2 penalty's gradient (see ``_optimizers.py``)."""
        for grad, coefficient, source in zip(grads, weight_decay, sources):
            if coefficient:
                self.add_scaled(grad, source, coefficient)

    # -- blocks of the optimizers' element-wise steps -------------------------------

    def step_scratch(self, params):
        """Scratch of an element-wise optimizer step, one array per parameter,
        as :meth:`step_blocks` slices it: here shaped like the parameter."""
        return [self.empty(p.shape, p.dtype) for p in params]

    def step_blocks(self, scratch, *arrays):
        """Yield ``(scratch, *arrays)`` block by block: views of the same
        elements of each array, over which an optimizer runs its element-wise
        step in turn. Here one block, the whole arrays.

        Parameters
        ----------
        scratch : array
            The parameter's array of :meth:`step_scratch`.
        *arrays : arrays of one shape
            The parameter, its gradient and its state.
        """
        yield (scratch, *arrays)

    def compiled_step(self, loop):
        """An optimizer's element-wise step compiled as one loop (see
        ``_compiled.py``), or None: here none, the step runs as array
        operations over :meth:`step_blocks`.

        Parameters
        ----------
        loop : callable
            The optimizer's step as a loop over 1-D arrays:
            ``loop(*arrays, *scalars, *options)``.

        Returns
        -------
        step : callable or None
            ``step(arrays, scalars, options)`` runs ``loop`` on the flattened
            ``arrays`` (the parameter, its gradient and its state), with
            ``scalars`` in their dtype, and returns True; or returns False
            where the loop would not round as the array operations do, and
            does nothing.
        """
        return None

    # -- multi-tensor primitives of the optimizers' steps ---------------------------
    #
    # Here one array at a time; ``TorchOps`` runs each as one multi-tensor
    # kernel, and the optimizers step with them where ``foreach`` is True.

    def foreach_scale(self, xs, scale):
        """``x *= scale`` for every ``x`` of ``xs``."""
        for x in xs:
            x *= scale

    def foreach_add_scaled(self, outs, xs, scale=1.0):
        """``out += scale * x`` for every pair."""
        for out, x in zip(outs, xs):
            self.add_scaled(out, x, scale)

    def foreach_add_product(self, outs, a, b, scale):
        """``out += scale * a * b`` for every triple."""
        for out, x, y in zip(outs, a, b):
            out += scale * x * y

    def foreach_add_quotient(self, outs, a, b, scale):
        """``out += scale * a / b`` for every triple."""
        for out, x, y in zip(outs, a, b):
            out += scale * x / y

    def foreach_add_scalar(self, xs, value):
        """``x += value`` for every ``x`` of ``xs``."""
        for x in xs:
            x += value

    def foreach_sqrt(self, xs, outs):
        """``out = sqrt(x)`` for every pair."""
        for x, out in zip(xs, outs):
            self.sqrt(x, out=out)

    def step_counters(self, t, params):
        """Adam's step count ``t``, one 0-d array per parameter, as
        :meth:`fused_adam` reads it (:meth:`foreach_add_scalar` counts on)."""
        return [self.xp.asarray(float(t), device=self.device) for _ in params]

    def fused_adam(self, params, grads, ms, vs, steps, *, lr, beta_1, beta_2, epsilon,
                   weight_decay):
        """One Adam step of every parameter, ``torch.optim.Adam``'s: the
        moments ``m``, ``v`` as scikit-learn's, then ``param -= lr / (1 -
        beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon)``, ``t`` read
        from ``steps``; ``weight_decay[i] * params[i]`` is added to the
        gradient first (the L2 penalty, not AdamW's decoupled decay)."""
        xp = self.xp
        for param, grad, m, v, step, coefficient in zip(
            params, grads, ms, vs, steps, weight_decay
        ):
            if coefficient:
                grad = grad + coefficient * param
            t = float(step)
            m *= beta_1
            m += (1 - beta_1) * grad
            v *= beta_2
            v += (1 - beta_2) * (grad * grad)
            denominator = xp.sqrt(v) / (1 - beta_2**t) ** 0.5 + epsilon
            param -= (lr / (1 - beta_1**t)) * (m / denominator)

    def affine(self, X, coef, intercept, out):
        """``X @ coef + intercept``."""
        self.matmul(X, coef, out=out)
        out += intercept
        return out

    def column_sums(self, x, out):
        out[...] = self.xp.sum(x, axis=0)
        return out

    def column_dots(self, a, b, out):
        """``out[j] = sum_i a[i, j] * b[i, j]``."""
        out[...] = self.xp.sum(a * b, axis=0)
        return out

    def take_rows(self, X, index, out):
        """Rows ``index`` (an index array of this namespace) of X, into ``out``."""
        out[...] = self.xp.take(X, index, axis=0)
        return out

    def row_buffer(self, X, n_rows):
        """A buffer for ``n_rows`` rows of X, for :meth:`gather_rows`."""
        return self.empty((n_rows, X.shape[1]), X.dtype)

    def gather_rows(self, X, index, buffer):
        """Rows ``index`` of X, written into the first rows of ``buffer``."""
        return self.take_rows(X, index, out=buffer[: index.shape[0], :])

    def rows(self, X, index):
        """Rows ``index`` of X, a new array."""
        return self.xp.take(X, index, axis=0)

    def mask_input(self, X, mask):
        """``X * mask``, written into ``mask`` (an input dropout mask shaped like X)."""
        return self.multiply(X, mask, out=mask)

    def scale_columns(self, X, scale):
        """``X * scale`` (one factor per column), a new array."""
        return X * scale

    def to_dense(self, X):
        return X

    def write_as(self, out, shape, compute):
        """Call ``compute(maps)`` with ``out`` (rows of a buffer) seen as an
        array of ``shape``, so that what it writes lands in ``out``; returns
        ``out``. Here a temporary, copied back; numpy and torch pass a view
        (a copy would lose the writes)."""
        maps = self.empty(shape, out.dtype)
        compute(maps)
        out[...] = self.xp.reshape(maps, out.shape)
        return out

    def zero_where_nonpositive(self, Z, delta):
        """``delta[Z <= 0] = 0`` (the ReLU derivative), in place."""
        delta *= self.xp.astype(Z > 0, delta.dtype)

    def dct(self, x, n):
        """Orthonormal DCT-II of the rows of ``x`` zero-padded to ``n`` columns."""
        raise TypeError(_NO_DCT.format(self.name))

    def idct(self, y, overwrite=False):
        """The inverse (and transpose) of :meth:`dct`, row by row."""
        raise TypeError(_NO_DCT.format(self.name))

    # -- convolution and pooling -------------------------------------------------------
    #
    # torch's semantics: a convolution of stride s and zero padding p, and a
    # pooling of stride s (no padding, floor mode), give (H + 2p - k) // s + 1
    # rows; the rows and columns that no window reaches are left out. The
    # generic forms loop over the kernel's offsets (kh kw products of
    # tensordot), each reading the strided slice of X that the offset meets:
    # the array API has no strided views.

    def _padded(self, X, padding):
        if not padding:
            return X
        n, channels, height, width = X.shape
        padded = self.xp.zeros(
            (n, channels, height + 2 * padding, width + 2 * padding), dtype=X.dtype,
            device=self.device,
        )
        padded[:, :, padding : padding + height, padding : padding + width] = X
        return padded

    def conv2d(self, X, kernel, bias, padding, out, stride=1):
        """Cross-correlation of ``X`` (n, C, H, W) with ``kernel`` (O, C, kh, kw)
        at ``stride``, zero-padded by ``padding`` on every side, plus ``bias``
        (O,) or None, into ``out`` (n, O, (H + 2 padding - kh) // stride + 1,
        (W + 2 padding - kw) // stride + 1)."""
        xp = self.xp
        X = self._padded(X, padding)
        _, _, kh, kw = kernel.shape
        h_out, w_out = out.shape[2:]
        total = None
        for p in range(kh):
            for q in range(kw):
                window = X[:, :, _span(p, h_out, stride), _span(q, w_out, stride)]
                term = xp.tensordot(window, kernel[:, :, p, q], axes=([1], [1]))
                total = term if total is None else total + term
        out[...] = xp.permute_dims(total, (0, 3, 1, 2))
        if bias is not None:
            out += xp.reshape(bias, (-1, 1, 1))
        return out

    def conv2d_input_grad(self, delta, kernel, padding, stride=1, input_size=None):
        """dLoss/dX, a new (n, C, H, W) array, from ``delta`` = dLoss/d(out) of
        :meth:`conv2d` passed back through ``kernel``. ``input_size``: X's
        ``(H, W)``, which a stride leaves ambiguous; None is the smallest
        input that gives ``delta``'s map."""
        xp = self.xp
        n, _, h_out, w_out = delta.shape
        _, n_in, kh, kw = kernel.shape
        height, width = _input_size(delta, kernel, padding, stride, input_size)
        padded = xp.zeros(
            (n, n_in, height + 2 * padding, width + 2 * padding), dtype=delta.dtype,
            device=self.device,
        )
        for p in range(kh):
            for q in range(kw):
                term = xp.tensordot(delta, kernel[:, :, p, q], axes=([1], [0]))
                padded[:, :, _span(p, h_out, stride), _span(q, w_out, stride)] += (
                    xp.permute_dims(term, (0, 3, 1, 2))
                )
        return padded[:, :, padding : padding + height, padding : padding + width]

    def conv2d_weight_grad(self, X, delta, padding, kernel_grad, bias_grad, stride=1):
        """dLoss/dkernel and dLoss/dbias of :meth:`conv2d`, into the buffers."""
        xp = self.xp
        X = self._padded(X, padding)
        _, _, kh, kw = kernel_grad.shape
        h_out, w_out = delta.shape[2:]
        for p in range(kh):
            for q in range(kw):
                window = X[:, :, _span(p, h_out, stride), _span(q, w_out, stride)]
                kernel_grad[:, :, p, q] = xp.tensordot(
                    delta, window, axes=([0, 2, 3], [0, 2, 3])
                )
        bias_grad[...] = xp.sum(delta, axis=(0, 2, 3))
        return kernel_grad, bias_grad

    def _pool_windows(self, X, size, stride, out_size):
        """(n, C, rows, cols, size * size): each window's entries, row-major."""
        rows, cols = out_size
        return self.xp.stack(
            [X[:, :, _span(p, rows, stride), _span(q, cols, stride)]
             for p in range(size) for q in range(size)],
            axis=4,
        )

    def max_pool2d(self, X, size, out, stride):
        """Maxima of the ``size`` x ``size`` windows of ``X`` (n, C, H, W) at
        ``stride`` into ``out`` (n, C, (H - size) // stride + 1, ...)."""
        out[...] = self.xp.max(self._pool_windows(X, size, stride, out.shape[2:]), axis=4)
        return out

    def max_unpool2d(self, delta, X, size, stride):
        """dLoss/dX of :meth:`max_pool2d` of ``X``, a new (n, C, H, W) array:
        ``delta`` at each window's maximum (the first on ties), summed where
        overlapping windows share it."""
        xp = self.xp
        rows, cols = delta.shape[2:]
        first = xp.argmax(self._pool_windows(X, size, stride, (rows, cols)), axis=4)
        dX = xp.zeros(X.shape, dtype=delta.dtype, device=self.device)
        for k in range(size * size):
            p, q = divmod(k, size)
            dX[:, :, _span(p, rows, stride), _span(q, cols, stride)] += (
                xp.astype(first == k, delta.dtype) * delta
            )
        return dX

    def avg_pool2d(self, X, size, out, stride):
        """Means of the ``size`` x ``size`` windows of ``X`` at ``stride`` into
        ``out`` (torch's ``avg_pool2d`` without padding)."""
        out[...] = self.xp.sum(self._pool_windows(X, size, stride, out.shape[2:]), axis=4)
        out /= size * size
        return out

    def avg_pool2d_input_grad(self, delta, size, stride, input_size):
        """dLoss/dX of :meth:`avg_pool2d`, a new (n, C, *input_size) array."""
        xp = self.xp
        n, channels, rows, cols = delta.shape
        share = delta / (size * size)
        dX = xp.zeros((n, channels, *input_size), dtype=delta.dtype, device=self.device)
        for p in range(size):
            for q in range(size):
                dX[:, :, _span(p, rows, stride), _span(q, cols, stride)] += share
        return dX

    def global_avg_pool2d(self, X, out):
        """The mean of each map of ``X`` (n, C, H, W) into ``out`` (n, C, 1, 1)."""
        out[...] = self.xp.mean(X, axis=(2, 3), keepdims=True)
        return out

    def global_avg_pool2d_input_grad(self, delta, input_size):
        """dLoss/dX of :meth:`global_avg_pool2d`: ``delta`` (n, C, 1, 1)
        spread evenly over maps of ``input_size``, a new (n, C, H, W) array."""
        n, channels = delta.shape[:2]
        dX = self.empty((n, channels, *input_size), delta.dtype)
        dX[...] = delta / (input_size[0] * input_size[1])
        return dX

    # -- reductions and new arrays ---------------------------------------------------

    def row_dots(self, a, b):
        """``sum_j a[i, j] * b[i, j]`` for every row i."""
        return self.xp.sum(a * b, axis=1)

    def log_softmax(self, x):
        """``log softmax`` of the rows of ``x``, a new array (written out: on
        small outputs, scipy's ``log_softmax`` costs twice as much)."""
        xp = self.xp
        shifted = x - xp.max(x, axis=1, keepdims=True)
        shifted -= xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        return shifted

    def log_expit(self, x):
        # log(1 / (1 + exp(-x))) = min(x, 0) - log1p(exp(-|x|)), stable both ways.
        xp = self.xp
        return xp.minimum(x, xp.zeros_like(x)) - xp.log1p(xp.exp(-xp.abs(x)))

    def vdot(self, a, b):
        """``sum(a * b)`` as a Python float, accumulated in float64 where available."""
        xp = self.xp
        wide = getattr(xp, "float64", a.dtype)
        try:
            a, b = xp.astype(a, wide), xp.astype(b, wide)
        except (TypeError, ValueError, RuntimeError):  # no float64 on this device
            pass
        return float(xp.sum(a * b))

    def total(self, x):
        return float(self.xp.sum(x))

    def sum_squares(self, x):
        return float(self.xp.sum(x * x))

    def total_sum_squares(self, arrays):
        """``sum(sum_squares(a) for a in arrays)``: the L2 penalty's sum."""
        return sum(self.sum_squares(a) for a in arrays)

    def all_finite(self, arrays):
        return all(bool(self.xp.all(self.xp.isfinite(a))) for a in arrays)

    # -- the training loop's per-batch scalars and random draws ---------------------

    def device_total(self, x):
        """``sum(x)`` as a scalar that may stay on the device (see
        :meth:`loss_accumulator`): a Python float here."""
        return self.total(x)

    def device_total_sum_squares(self, arrays):
        """:meth:`total_sum_squares` as a scalar that may stay on the device."""
        return self.total_sum_squares(arrays)

    def loss_accumulator(self):
        """The sum of an epoch's weighted batch losses (:class:`HostLossSum`)."""
        return HostLossSum()

    def dropout_masks(self, rng):
        """What draws a fit's dropout masks from ``rng``, a numpy Generator
        (:class:`HostDropoutMasks`: drawn with numpy, copied to the device)."""
        return HostDropoutMasks(self, rng)

    def shuffled_rows(self, rng, n):
        """An epoch's order of the rows ``0 .. n - 1``, as an index array of
        this namespace: ``rng.permutation(n)`` (``rng`` is the estimator's
        RandomState), copied to the device."""
        return self.index(rng.permutation(n))

    def batch_totals(self, x, batch_size):
        """The sums of ``x``'s consecutive slices of ``batch_size`` entries
        (the last one may be shorter), as a list of Python floats: an epoch's
        batch weight sums, read from the device at once."""
        xp = self.xp
        n_full = x.shape[0] // batch_size
        totals = [xp.sum(xp.reshape(x[: n_full * batch_size], (n_full, batch_size)), axis=1)]
        if x.shape[0] > n_full * batch_size:
            totals.append(xp.reshape(xp.sum(x[n_full * batch_size :]), (1,)))
        return self.to_numpy(xp.concat(totals)).tolist()

    def index(self, index):
        """A numpy integer index array, as an index array of this namespace."""
        return self.xp.asarray(index.astype(np.int64, copy=False), device=self.device)

    def to_numpy(self, x):
        return _convert_to_numpy(x, self.xp)

    def is_numpy(self):
        return False


class HostLossSum:
    """The sum of an epoch's batch losses, each weighted by its batch's size,
    as Python floats: each loss is read on the host (a 0-d device array
    waits for its device), so a non-finite one is reported at once."""

    def __init__(self):
        self.total = 0.0

    def add(self, loss, n):
        """Add ``loss * n``; returns False when ``loss`` is not finite."""
        loss = float(loss)
        if not np.isfinite(loss):
            return False
        self.total += loss * n
        return True

    def value(self):
        return self.total


class HostDropoutMasks:
    """Inverted-dropout masks drawn with numpy from ``rng`` and copied to the
    arrays' device: numpy's stream, whatever the namespace."""

    def __init__(self, ops, rng):
        self.ops, self.rng = ops, rng

    def start_epoch(self):
        """Called before each epoch's first mask (numpy's stream needs nothing)."""

    def draw(self, out, rate):
        """Draw into ``out`` a mask that is 0 with probability ``rate``, else
        ``1 / (1 - rate)``; returns ``out``."""
        ops = self.ops
        host = out if ops.is_numpy() else np.empty(out.shape, ops.numpy_dtype(out.dtype))
        self.rng.random(out=host, dtype=host.dtype)
        np.greater_equal(host, rate, out=host)
        host *= 1.0 / (1.0 - rate)
        if host is not out:
            ops.copy_into(out, ops.asarray(host))
        return out


_NO_DCT = (
    "rd_matrix='dct' runs on numpy and torch arrays only, not on {} arrays; "
    "use rd_matrix='gaussian', which runs in every array API namespace."
)


def _span(start, n, stride):
    """The slice of the ``n`` positions ``start, start + stride, ...``."""
    return slice(start, start + (n - 1) * stride + 1, stride)


def _input_size(delta, kernel, padding, stride, input_size):
    """``input_size``, or the smallest (H, W) whose convolution gives ``delta``."""
    if input_size is not None:
        return tuple(input_size)
    (h_out, w_out), (kh, kw) = delta.shape[2:], kernel.shape[2:]
    return (h_out - 1) * stride + kh - 2 * padding, (w_out - 1) * stride + kw - 2 * padding


def _numpy_dtype(dtype):
    """The numpy dtype of the same name as any namespace's float dtype."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype)
    name = str(dtype).split(".")[-1]
    return np.dtype(name)
