"""The numpy part of the engine's array operations: :class:`NumpyOps`.

numpy's ``out=`` arguments, ``einsum`` and scipy's special functions: the
default path. It also owns every ``scipy.sparse`` branch of the engine
(sparse X is gathered, masked, scaled, multiplied and densified here), so no
other module tests for sparse input. Convolutions are im2col (strided views)
and one matrix product.
"""

import numpy as np
import scipy.sparse as sp
from scipy.fft import dct, idct
from scipy.special import expit, log_expit
from sklearn.utils import gen_batches

from ._compiled import compiled
from ._ops_base import ArrayOps, _input_size, _span


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
            # A numpy float64 scale of float32 arrays makes the product float64
            # before it meets ``out``: computed so, as without scratch.
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

    def compiled_step(self, loop):
        kernel = compiled(loop)
        if kernel is None:
            return None
        # The scalars in their dtype, by dtype and scalars: a step passes the
        # same ones for most of its parameters (those with and without the
        # penalty), and checking and converting them took ten times the
        # loop's own call.
        typed_scalars = {}

        def step(arrays, scalars, options):
            # The loop computes as the ufuncs do only on arrays that flatten
            # without a copy, and with scalars that do not widen the
            # arithmetic (a float64 numpy scalar makes float32 ufuncs compute
            # in float64): otherwise the caller takes the ufuncs.
            dtype = arrays[0].dtype
            # The types too: 0.3 and np.float64(0.3) are equal keys, but only
            # the first leaves float32 arithmetic float32.
            key = (dtype, scalars, tuple(map(type, scalars)))
            if key not in typed_scalars:
                if len(typed_scalars) > 8:  # the scalars change every step
                    typed_scalars.clear()
                typed_scalars[key] = (
                    None if any(np.result_type(dtype, s) != dtype for s in scalars)
                    else tuple(dtype.type(s) for s in scalars)
                )
            typed = typed_scalars[key]
            if typed is None or not all(a.flags.c_contiguous for a in arrays):
                return False
            kernel(*(a.reshape(-1) for a in arrays), *typed, *options)
            return True

        return step

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

    def write_as(self, out, shape, compute):
        view = out.view()
        view.shape = shape  # raises where only a copy could reshape
        compute(view)
        return out

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
