"""The engine's array operations, one implementation per array namespace.

The engine is written once, against the array API (in-place operators such
as ``x += y`` are part of it). The few operations whose fast form differs
between namespaces (writing into a preallocated buffer, fused optimizer
steps) are methods of an ``ArrayOps`` object, chosen once from the arrays'
namespace by :func:`array_ops`:

- ``ArrayOps``: any array API namespace (array_api_strict, CuPy, ...); a
  result is computed, then copied into its buffer.
- ``NumpyOps``: numpy's ``out=`` arguments, ``einsum`` and scipy's special
  functions; the default path. It also owns every ``scipy.sparse`` branch
  of the engine (sparse X is gathered, masked, scaled and multiplied as
  sparse), so no other module tests for sparse input.
- ``TorchOps``: torch's ``out=`` kernels, and the multi-tensor primitives
  the optimizers step every parameter at once with (``foreach_*``, fused
  Adam: ``torch._foreach_*`` and ``torch._fused_adam_``), on whatever device
  the tensors live. Only ``TorchOps`` has them (``foreach = True``): the
  optimizers never import torch.

Every method that takes ``out`` writes its result there and returns it.
"""

import numpy as np
import scipy.sparse as sp
from scipy.fft import dct, idct
from scipy.special import expit, log_expit
from sklearn.externals import array_api_compat
from sklearn.utils import gen_batches
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


class NumpyOps(ArrayOps):
    """numpy: every buffered operation uses ``out=``; sparse X is welcome."""

    def __init__(self):
        super().__init__(np, None)

    @property
    def name(self):
        return "numpy"

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def zeros_like(self, x):
        return np.zeros_like(x)

    def asarray(self, array, dtype=None):
        return np.asarray(array, dtype=dtype)

    def astype(self, x, dtype):
        return x.astype(dtype, copy=False)

    def copy(self, x):
        return x.copy()

    def matmul(self, a, b, out):
        if sp.issparse(a):
            # The sparse product never densifies a.
            out[...] = a @ b
            return out
        return np.matmul(a, b, out=out)

    def multiply(self, a, b, out):
        return np.multiply(a, b, out=out)

    def divide(self, a, b, out):
        return np.divide(a, b, out=out)

    def sqrt(self, x, out):
        return np.sqrt(x, out=out)

    def one_minus(self, x, out):
        return np.subtract(1, x, out=out)

    def one_minus_square(self, x, out):
        np.multiply(x, x, out=out)
        return np.subtract(1, out, out=out)

    def tanh(self, x, out):
        return np.tanh(x, out=out)

    def expit(self, x, out):
        return expit(x, out=out)

    def relu(self, x, out):
        return np.maximum(x, 0, out=out)

    def exp(self, x, out):
        return np.exp(x, out=out)

    def copy_into(self, out, x):
        np.copyto(out, x)
        return out

    def add_scaled(self, out, x, scale, scratch=None):
        if scratch is None or np.result_type(x, scale) != out.dtype:
            # A strong float64 scale computes the product in float64: kept.
            out += scale * x
            return
        np.add(out, np.multiply(x, scale, out=scratch), out=out)

    # An element-wise optimizer step makes a dozen passes over a parameter, its
    # gradient and its state (Adam: 11 ufuncs). Run over blocks of this many
    # elements, those passes stay in the L2 cache rather than each going to
    # memory; the ufuncs are the same, so every element rounds as it did over
    # the whole array. 32K float32 elements: 640 KiB for Adam's five arrays.
    step_block_size = 1 << 15

    def step_scratch(self, params):
        # One block, shared by the parameters of a dtype.
        sizes = {}
        for p in params:
            sizes[p.dtype] = max(sizes.get(p.dtype, 0), min(p.size, self.step_block_size))
        blocks = {dtype: np.empty(size, dtype) for dtype, size in sizes.items()}
        return [blocks[p.dtype] for p in params]

    def step_blocks(self, scratch, *arrays):
        if not all(a.flags.c_contiguous for a in arrays):
            # Flattening would copy: the whole arrays, with their own scratch.
            yield (np.empty_like(arrays[0]), *arrays)
            return
        flat = [a.reshape(-1) for a in arrays]
        size, step = flat[0].size, self.step_block_size
        for start in range(0, size, step):
            block = slice(start, min(start + step, size))
            yield (scratch[: block.stop - start], *(a[block] for a in flat))

    def column_sums(self, x, out):
        return np.sum(x, axis=0, out=out)

    def column_dots(self, a, b, out):
        if sp.issparse(b):
            out[...] = np.asarray(b.multiply(a).sum(axis=0)).ravel()
            return out
        return np.einsum("ij,ij->j", a, b, out=out)

    def take_rows(self, X, index, out):
        return np.take(X, index, axis=0, out=out)

    # scipy.sparse X: its rows are gathered by indexing, it is masked and
    # scaled as sparse, and densified only where an operation needs dense rows.

    def row_buffer(self, X, n_rows):
        return None if sp.issparse(X) else super().row_buffer(X, n_rows)

    def gather_rows(self, X, index, buffer):
        return X[index] if buffer is None else super().gather_rows(X, index, buffer)

    def rows(self, X, index):
        return X[index] if sp.issparse(X) else np.take(X, index, axis=0)

    def mask_input(self, X, mask):
        if sp.issparse(X):
            return X.multiply(mask).tocsr()
        return np.multiply(X, mask, out=mask)

    def scale_columns(self, X, scale):
        return X.multiply(scale).tocsr() if sp.issparse(X) else X * scale

    def to_dense(self, X):
        return X.toarray() if sp.issparse(X) else X

    def zero_where_nonpositive(self, Z, delta):
        delta[Z <= 0] = 0

    def row_dots(self, a, b):
        return np.einsum("ij,ij->i", a, b)

    def conv2d(self, X, kernel, bias, padding, out, stride=1):
        # One matrix product: (O, C kh kw) @ im2col columns (C kh kw, n Ho Wo).
        n_out, _, kh, kw = kernel.shape
        columns = _im2col(X, kh, kw, padding, stride)
        result = kernel.reshape(n_out, -1) @ columns
        n, _, h_out, w_out = out.shape
        np.copyto(out, result.reshape(n_out, n, h_out, w_out).transpose(1, 0, 2, 3))
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        return out

    def conv2d_input_grad(self, delta, kernel, padding, stride=1, input_size=None):
        # col2im: one matrix product gives every kernel offset's contribution,
        # (kh kw C, n Ho Wo); each offset's block is then added at its
        # (strided) shift.
        n, n_out, h_out, w_out = delta.shape
        _, n_in, kh, kw = kernel.shape
        height, width = _input_size(delta, kernel, padding, stride, input_size)
        delta_rows = delta.transpose(1, 0, 2, 3).reshape(n_out, -1)
        columns = kernel.transpose(2, 3, 1, 0).reshape(-1, n_out) @ delta_rows
        columns = columns.reshape(kh, kw, n_in, n, h_out, w_out)
        # Accumulated as (C, n, H, W) padded, the blocks' own layout.
        padded = np.zeros((n_in, n, height + 2 * padding, width + 2 * padding), dtype=delta.dtype)
        for p in range(kh):
            for q in range(kw):
                padded[:, :, _span(p, h_out, stride), _span(q, w_out, stride)] += columns[p, q]
        inner = padded[:, :, padding : padding + height, padding : padding + width]
        return np.ascontiguousarray(inner.transpose(1, 0, 2, 3))

    def conv2d_weight_grad(self, X, delta, padding, kernel_grad, bias_grad, stride=1):
        n_out, _, kh, kw = kernel_grad.shape
        columns = _im2col(X, kh, kw, padding, stride)
        # delta as (O, n Ho Wo), the columns' order.
        delta_rows = delta.transpose(1, 0, 2, 3).reshape(n_out, -1)
        np.matmul(delta_rows, columns.T, out=kernel_grad.reshape(n_out, -1))
        np.sum(delta, axis=(0, 2, 3), out=bias_grad)
        return kernel_grad, bias_grad

    # Pooling: one pass per window offset over strided views (numpy reduces
    # small strided axes slowly).

    def max_pool2d(self, X, size, out, stride):
        offsets = _pool_offsets(X, size, stride, out.shape[2:])
        np.copyto(out, next(offsets))
        for view in offsets:
            np.maximum(out, view, out=out)
        return out

    def max_unpool2d(self, delta, X, size, stride):
        offsets = _pool_offsets(X, size, stride, delta.shape[2:])
        best = next(offsets).copy()
        # The first maximum of each window, in row-major order (torch's).
        first = np.zeros(best.shape, dtype=np.intp)
        for k, view in enumerate(offsets, start=1):
            larger = view > best
            first[larger] = k
            np.maximum(best, view, out=best)
        dX = np.zeros(X.shape, dtype=delta.dtype)
        for k, view in enumerate(_pool_offsets(dX, size, stride, delta.shape[2:])):
            if stride < size:  # overlapping windows: an input may be several maxima
                view += delta * (first == k)
            else:
                np.multiply(delta, first == k, out=view)
        return dX

    def avg_pool2d(self, X, size, out, stride):
        offsets = _pool_offsets(X, size, stride, out.shape[2:])
        np.copyto(out, next(offsets))
        for view in offsets:
            out += view
        out /= size * size
        return out

    def avg_pool2d_input_grad(self, delta, size, stride, input_size):
        share = delta / (size * size)
        dX = np.zeros((*delta.shape[:2], *input_size), dtype=delta.dtype)
        for view in _pool_offsets(dX, size, stride, delta.shape[2:]):
            view += share
        return dX

    def dct(self, x, n):
        # x is a temporary of the caller's, free to overwrite.
        return dct(x, n=n, norm="ortho", axis=1, overwrite_x=True)

    def idct(self, y, overwrite=False):
        return idct(y, norm="ortho", axis=1, overwrite_x=overwrite)

    def log_expit(self, x):
        return log_expit(x)

    def vdot(self, a, b):
        if a.ndim != 2:  # convolution kernels
            a, b = a.reshape(1, -1), b.reshape(1, -1)
        return float(np.einsum("ij,ij->", a, b, dtype=np.float64))

    def total(self, x):
        return float(x.sum())

    def sum_squares(self, x):
        return float(np.dot(x.ravel(), x.ravel()))

    def all_finite(self, arrays):
        return all(np.isfinite(a).all() for a in arrays)

    def index(self, index):
        return index

    def batch_totals(self, x, batch_size):
        # Each slice summed alone, as before: the same sums, bit for bit.
        return [self.total(x[batch]) for batch in gen_batches(x.shape[0], batch_size)]

    def to_numpy(self, x):
        return x

    def is_numpy(self):
        return True


class TorchOps(ArrayOps):
    """torch: ``out=`` kernels and ``torch._foreach_*`` optimizer steps.

    They run on the tensors' device, in torch's own thread pool (set with
    ``torch.set_num_threads``).
    """

    foreach = True

    def __init__(self, xp, device):
        super().__init__(xp, device)
        import torch

        self.torch = torch
        self._dct_cache = {}
        self._ones = {}

    def matmul(self, a, b, out):
        return self.torch.matmul(a, b, out=out)

    def multiply(self, a, b, out):
        return self.torch.mul(a, b, out=out)

    def divide(self, a, b, out):
        return self.torch.div(a, b, out=out)

    def sqrt(self, x, out):
        return self.torch.sqrt(x, out=out)

    def one_minus(self, x, out):
        return self.torch.sub(self._one(x.dtype), x, out=out)

    def one_minus_square(self, x, out):
        # One pass: 1 + (-1) * x * x.
        return self.torch.addcmul(self._one(x.dtype), x, x, value=-1, out=out)

    def _one(self, dtype):
        if dtype not in self._ones:
            self._ones[dtype] = self.torch.ones((), dtype=dtype, device=self.device)
        return self._ones[dtype]

    def affine(self, X, coef, intercept, out):
        return self.torch.addmm(intercept, X, coef, out=out)

    def add_scaled(self, out, x, scale, scratch=None):
        out.add_(x, alpha=scale)

    # -- multi-tensor primitives of the optimizers' steps (``foreach``) ----------

    def add_decay(self, grads, weight_decay, sources):
        # One kernel per distinct coefficient (the network has one: alpha
        # over the batch's total sample weight).
        for coefficient, indices in _groups(weight_decay).items():
            if coefficient:
                self.torch._foreach_add_(
                    [grads[i] for i in indices], [sources[i] for i in indices],
                    alpha=coefficient,
                )

    def foreach_scale(self, xs, scale):
        self.torch._foreach_mul_(xs, scale)

    def foreach_add_scaled(self, outs, xs, scale=1.0):
        self.torch._foreach_add_(outs, xs, alpha=scale)

    def foreach_add_product(self, outs, a, b, scale):
        self.torch._foreach_addcmul_(outs, a, b, value=scale)

    def foreach_add_quotient(self, outs, a, b, scale):
        self.torch._foreach_addcdiv_(outs, a, b, value=scale)

    def foreach_add_scalar(self, xs, value):
        self.torch._foreach_add_(xs, value)

    def foreach_sqrt(self, xs, outs):
        for x, out in zip(xs, outs):
            self.torch.sqrt(x, out=out)

    def step_counters(self, t, params):
        # float32 tensors on each parameter's device, as the fused kernel reads them.
        return [
            self.torch.tensor(float(t), dtype=self.torch.float32, device=p.device)
            for p in params
        ]

    def fused_adam(self, params, grads, ms, vs, steps, *, lr, beta_1, beta_2, epsilon,
                   weight_decay):
        # torch's fused kernel (torch.optim.Adam(fused=True)), one pass over
        # each parameter; one call per distinct decay coefficient.
        for coefficient, indices in _groups(weight_decay).items():
            self.torch._fused_adam_(
                *([state[i] for i in indices] for state in (params, grads, ms, vs)),
                [], [steps[i] for i in indices],
                amsgrad=False, lr=lr, beta1=beta_1, beta2=beta_2,
                weight_decay=coefficient, eps=epsilon, maximize=False,
            )

    def tanh(self, x, out):
        return self.torch.tanh(x, out=out)

    def expit(self, x, out):
        return self.torch.sigmoid(x, out=out)

    def relu(self, x, out):
        return self.torch.clamp_min(x, 0, out=out)

    def exp(self, x, out):
        return self.torch.exp(x, out=out)

    def copy_into(self, out, x):
        return out.copy_(x)

    def column_sums(self, x, out):
        return self.torch.sum(x, 0, out=out)

    def column_dots(self, a, b, out):
        return self.torch.linalg.vecdot(a, b, dim=0, out=out)

    def take_rows(self, X, index, out):
        return self.torch.index_select(X, 0, index, out=out)

    def zero_where_nonpositive(self, Z, delta):
        delta.masked_fill_(Z <= 0, 0)

    def row_dots(self, a, b):
        return self.torch.linalg.vecdot(a, b, dim=1)

    def conv2d(self, X, kernel, bias, padding, out, stride=1):
        return out.copy_(
            self.torch.nn.functional.conv2d(X, kernel, bias, stride=stride, padding=padding)
        )

    def conv2d_input_grad(self, delta, kernel, padding, stride=1, input_size=None):
        shape = (delta.shape[0], kernel.shape[1],
                 *_input_size(delta, kernel, padding, stride, input_size))
        return self.torch.nn.grad.conv2d_input(
            shape, kernel, delta, stride=stride, padding=padding
        )

    def conv2d_weight_grad(self, X, delta, padding, kernel_grad, bias_grad, stride=1):
        kernel_grad.copy_(self.torch.nn.grad.conv2d_weight(
            X, kernel_grad.shape, delta, stride=stride, padding=padding
        ))
        self.torch.sum(delta, (0, 2, 3), out=bias_grad)
        return kernel_grad, bias_grad

    def max_pool2d(self, X, size, out, stride):
        return out.copy_(self.torch.nn.functional.max_pool2d(X, size, stride))

    def max_unpool2d(self, delta, X, size, stride):
        # Added at each window's maximum: overlapping windows may share one
        # (``max_unpool2d`` would keep only one of their deltas).
        _, argmax = self.torch.nn.functional.max_pool2d(X, size, stride, return_indices=True)
        dX = self.torch.zeros(X.shape, dtype=delta.dtype, device=delta.device)
        dX.flatten(2).scatter_add_(2, argmax.flatten(2), delta.flatten(2))
        return dX

    def avg_pool2d(self, X, size, out, stride):
        return out.copy_(self.torch.nn.functional.avg_pool2d(X, size, stride))

    def avg_pool2d_input_grad(self, delta, size, stride, input_size):
        # The average is a convolution of each channel alone by a constant kernel.
        channels = delta.shape[1]
        kernel = self.torch.full(
            (channels, 1, size, size), 1.0 / (size * size), dtype=delta.dtype,
            device=delta.device,
        )
        return self.torch.nn.grad.conv2d_input(
            (delta.shape[0], channels, *input_size), kernel, delta, stride=stride,
            groups=channels,
        )

    def _dct_factors(self, n, dtype):
        """``cos``, ``sin`` of ``pi k / (2 n)`` and the orthonormal scale, per k."""
        key = (n, dtype)
        if key not in self._dct_cache:
            k = np.arange(n)
            theta = np.pi * k / (2 * n)
            scale = np.where(k == 0, np.sqrt(1 / n), np.sqrt(2 / n))
            self._dct_cache[key] = tuple(
                self.torch.as_tensor(a, dtype=dtype, device=self.device)
                for a in (np.cos(theta), np.sin(theta), scale)
            )
        return self._dct_cache[key]

    def dct(self, x, n):
        # Makhoul (1980): the DCT-II of x is the real part of the FFT of x's
        # even entries followed by its odd ones reversed, times a twiddle.
        torch = self.torch
        if x.shape[1] < n:
            x = torch.nn.functional.pad(x, (0, n - x.shape[1]))
        v = torch.cat([x[:, ::2], x[:, 1::2].flip(1)], dim=1)
        V = torch.fft.fft(v, dim=1)
        cos, sin, scale = self._dct_factors(n, x.dtype)
        return (V.real * cos + V.imag * sin) * scale

    def idct(self, y, overwrite=False):
        # Inverts dct(): the twiddled FFT is a_k - i a_{n-k}, a = y / scale.
        torch = self.torch
        n = y.shape[1]
        cos, sin, scale = self._dct_factors(n, y.dtype)
        a = y / scale
        b = torch.cat([torch.zeros_like(a[:, :1]), a[:, 1:].flip(1)], dim=1)
        V = torch.complex(cos * a + sin * b, sin * a - cos * b)
        v = torch.fft.ifft(V, dim=1).real
        x = torch.empty_like(y)
        half = (n + 1) // 2
        x[:, ::2] = v[:, :half]
        x[:, 1::2] = v[:, half:].flip(1)
        return x

    def log_softmax(self, x):
        return self.torch.log_softmax(x, 1)

    def log_expit(self, x):
        return self.torch.nn.functional.logsigmoid(x)

    def total(self, x):
        return float(x.sum())

    def total_sum_squares(self, arrays):
        # One multi-tensor norm kernel and one transfer to the host: on CPU,
        # torch.dot of a 1000 x 1000 weight is an order of magnitude slower
        # than its norm, and on a GPU each float() is a synchronisation.
        if not arrays:
            return 0.0
        norms = self.torch._foreach_norm(arrays)
        return float(self.torch.linalg.vector_norm(self.torch.stack(norms))) ** 2

    def all_finite(self, arrays):
        return all(bool(self.torch.isfinite(a).all()) for a in arrays)

    def _scalar_dtype(self):
        # Scalars are summed in float64, as Python floats are; MPS has none.
        return self.torch.float32 if self.torch.device(self.device).type == "mps" else self.torch.float64

    def device_total(self, x):
        # The sum in x's dtype, as float(x.sum()) rounds it, then widened.
        return x.sum().to(self._scalar_dtype())

    def device_total_sum_squares(self, arrays):
        if not arrays:
            return 0.0
        norms = self.torch._foreach_norm(arrays)
        return self.torch.linalg.vector_norm(self.torch.stack(norms)).to(self._scalar_dtype()) ** 2

    def loss_accumulator(self):
        return DeviceLossSum(self)

    def dropout_masks(self, rng):
        return TorchDropoutMasks(self, rng)

    def shuffled_rows(self, rng, n):
        # Drawn on the device by a generator seeded with one draw from rng:
        # no permutation on the host, no copy. The epoch-end snapshot saves
        # rng, so resumed and split fits draw the orders of one fit. The
        # orders agree with numpy's in distribution, not element for element.
        generator = self.torch.Generator(device=self.device)
        generator.manual_seed(int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64)))
        return self.torch.randperm(n, generator=generator, device=self.device)



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


class DeviceLossSum:
    """The sum of an epoch's batch losses (0-d tensors from
    :meth:`TorchOps.device_total`) kept on their device: adding one never
    waits for the device. A non-finite loss makes the sum non-finite, so the
    loop learns of it from :meth:`value`, once per epoch."""

    def __init__(self, ops):
        self.total = ops.torch.zeros((), dtype=ops._scalar_dtype(), device=ops.device)

    def add(self, loss, n):
        self.total += loss * n
        return True

    def value(self):
        return float(self.total)


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


class TorchDropoutMasks:
    """Inverted-dropout masks drawn by a ``torch.Generator`` on the tensors'
    device: no draw on the host, no copy, no synchronisation.

    The generator is seeded at the start of each epoch with one draw from
    ``rng``, the estimator's numpy dropout stream; the epoch-end snapshot
    saves that stream, so a fit resumed after an interruption, or split into
    ``warm_start`` / ``partial_fit`` calls, draws the same masks as one fit.
    The masks agree with numpy's in distribution, not bit for bit.

    Each unit gets 16 random bits (one 64-bit draw serves four units; on CPU,
    torch's uniform floats cost about four times as much): the drop
    probability is ``rate`` rounded to a multiple of 2**-16.
    """

    def __init__(self, ops, rng):
        torch = ops.torch
        self.ops, self.rng, self.torch = ops, rng, torch
        self.generator = torch.Generator(device=ops.device)
        self._buffers = {}

    def start_epoch(self):
        self.generator.manual_seed(int(self.rng.integers(2**63)))

    def draw(self, out, rate):
        torch = self.torch
        shape = tuple(out.shape)
        if shape not in self._buffers:
            size = int(np.prod(shape))
            words = torch.empty(-(-size // 4), dtype=torch.int64, device=self.ops.device)
            self._buffers[shape] = words, words.view(torch.int16)[:size].view(shape)
        words, halves = self._buffers[shape]
        # Every bit random: the full int64 range.
        words.random_(-(2**63), None, generator=self.generator)
        # A unit is kept where its uniform int16 is >= threshold, with
        # probability 1 - rate. For an integer h, h - threshold + 1/2 is
        # >= 1/2 (kept) or <= -1/2 (dropped), exactly in float32: doubled,
        # scaled and clamped to [0, scale] it is the mask, in three passes
        # without a bool tensor.
        threshold = min(round(rate * 2**16), 2**16 - 1) - 2**15
        scale = 1.0 / (1.0 - rate)
        torch.sub(halves, threshold - 0.5, out=out)
        out *= 2 * scale
        return out.clamp_(0, scale)


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


def _im2col(X, kh, kw, padding, stride=1):
    """The (C kh kw, n Ho Wo) columns of X (n, C, H, W) zero-padded by
    ``padding``: row (c, p, q), column (i, n, y, x) holds
    X[i, c, stride y + p, stride x + q].

    The windows are a strided view; the one copy is the reshape.
    """
    if padding:
        X = np.pad(X, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    windows = np.lib.stride_tricks.sliding_window_view(X, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    n, channels, h_out, w_out = windows.shape[:4]
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(channels * kh * kw, n * h_out * w_out)


def _pool_offsets(X, size, stride, out_size):
    """For each offset (p, q) of a ``size`` x ``size`` window, row-major, the
    (n, C, *out_size) view of X's entries at that offset in every window
    (rows and columns that no window reaches are left out)."""
    rows, cols = out_size
    for p in range(size):
        for q in range(size):
            yield X[:, :, _span(p, rows, stride), _span(q, cols, stride)]


_NUMPY_OPS = NumpyOps()
_OPS_CACHE = {}


def array_ops(array):
    """The operations for the namespace and device of ``array``.

    Works whatever ``array_api_dispatch`` says: the engine follows the arrays
    it was given, so a fitted torch model keeps predicting with torch.
    """
    # Called several times per training step: one dictionary lookup.
    key = (type(array), getattr(array, "device", None))
    try:
        return _OPS_CACHE[key]
    except KeyError:
        pass
    except TypeError:  # a device that cannot be hashed
        key = (key[0], str(key[1]))
        if key in _OPS_CACHE:
            return _OPS_CACHE[key]
    if isinstance(array, np.ndarray) or sp.issparse(array):
        ops = _NUMPY_OPS
    else:
        xp = array_api_compat.array_namespace(array)
        device = array_api_compat.device(array)
        if array_api_compat.is_numpy_namespace(xp):
            ops = _NUMPY_OPS
        elif array_api_compat.is_torch_namespace(xp):
            ops = TorchOps(xp, device)
        else:
            ops = ArrayOps(xp, device)
    _OPS_CACHE[key] = ops
    return ops


def _groups(coefficients):
    """Indices of the parameters, grouped by their (decay) coefficient."""
    groups = {}
    for i, coefficient in enumerate(coefficients):
        groups.setdefault(coefficient, []).append(i)
    return groups


def _numpy_dtype(dtype):
    """The numpy dtype of the same name as any namespace's float dtype."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype)
    name = str(dtype).split(".")[-1]
    return np.dtype(name)
