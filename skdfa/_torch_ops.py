"""The torch part of the engine's array operations: :class:`TorchOps`.

torch's ``out=`` kernels, ``conv2d`` and its gradient functions, and the
multi-tensor primitives the optimizers step every parameter at once with
(``foreach_*``, fused Adam: ``torch._foreach_*`` and ``torch._fused_adam_``),
on whatever device the tensors live. Only ``TorchOps`` has them
(``foreach = True``): the optimizers never import torch. The loss is summed
and the dropout masks are drawn on the device.
"""

import numpy as np

from ._ops_base import ArrayOps, _input_size


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

    def write_as(self, out, shape, compute):
        compute(out.view(shape))
        return out

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
        # The ends of each array: NaN propagates to both and an infinity is
        # one of them. isfinite(a).all() writes a mask of every element
        # first, 15 times slower on CPU (4 million weights: 15 ms), and a
        # single transfer to the host is one synchronisation.
        ends = [self.torch.stack(self.torch.aminmax(a)) for a in arrays if a.numel()]
        return not ends or bool(self.torch.isfinite(self.torch.cat(ends)).all())

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
        # scaled and clamped to [0, scale] it is the mask, in passes over
        # ``out`` without a bool tensor. The int16 are copied into ``out``
        # first: ``torch.sub(halves, ...)`` would convert them into a new
        # tensor (a third of the draw's time, torch 2.13 CPU).
        threshold = min(round(rate * 2**16), 2**16 - 1) - 2**15
        scale = 1.0 / (1.0 - rate)
        out.copy_(halves)
        out -= threshold - 0.5
        out *= 2 * scale
        return out.clamp_(0, scale)


def _groups(coefficients):
    """Indices of the parameters, grouped by their (decay) coefficient."""
    groups = {}
    for i, coefficient in enumerate(coefficients):
        groups.setdefault(coefficient, []).append(i)
    return groups
