"""Layer types of the engine.

A layer maps its input ``X`` (n_samples, n_in) to pre-activations
``A`` (n_samples, n_out); the network applies the activation. Every layer type
implements the same small interface, so the network, the learning rules and
the optimizers never know which type they drive:

- ``params`` / ``param_names``: the trainable arrays (updated in place, never
  rebound) and their names;
- ``regularized``: for each parameter, whether the L2 penalty ``alpha`` applies;
- ``initialize(rng, weight_init, activation, dtype)``: draws the parameters;
- ``forward(X, out, training)``: writes ``A`` into ``out``; with
  ``training=True`` it may keep what ``gradients`` needs;
- ``gradients(X, delta, grads)``: writes ``dLoss/dparam`` into ``grads``;
- ``n_params``: the number of trainable scalars;
- ``activated`` (optional, True if absent): whether the network applies the
  activation to the output (False for max pooling, which follows an
  activated convolution);
- ``weight_matrix()``: the (n_in, n_out) matrix of the layer's linear map
  (for the weight-alignment diagnostics; None where it is not a matrix);
- ``fans()``: ``(fan_in, fan_out)`` of the weights, as Glorot counts them.

and the operations the learning rules (``_rules.py``) build deltas from:

- ``kind``: the layer type's name, which rules list in ``layer_kinds``;
- ``output_shape``: one sample's output shape (``n_out`` values in all);
  ``as_output(flat)`` views an (n_samples, n_out) array in that shape (a
  direct projection ``signal @ B_l`` lands there);
- ``backward(delta, feedback=None)``: ``dLoss/dX`` given ``delta = dLoss/dA``,
  through the layer's own weights (back-propagation), or through ``feedback``,
  an array that stands in for them, of shape ``feedback_shape`` (None for a
  layer without weights), drawn with ``feedback_width`` as receiving width;
- ``weights`` and ``weights_index``: the forward weight parameter (None when
  the layer has none a rule can take signs or updates of) and its index in
  ``params``; ``as_feedback(W)`` views an array shaped like ``weights`` in
  the form of a feedback array; ``backward_weights()`` is the layer's own
  map in that form (for the diagnostics).

Every layer computes with ``ops``, the network's ``ArrayOps`` (see
``_array_ops.py``), which the network hands it whenever its parameters are
created or moved to another namespace (``Network.use_ops``): a pass never
looks the arrays' namespace up. A layer used on its own finds the operations
of its arrays' namespace (:meth:`Layer.array_ops`).

A new layer type is one class here (convolution and pooling: ``_conv.py``).
"""

import numpy as np

from ._array_ops import array_ops


def _glorot_bound(fan_in, fan_out, activation):
    # Glorot and Bengio (2010), with sklearn's factor 2 for the logistic.
    factor = 2.0 if activation == "logistic" else 6.0
    return np.sqrt(factor / (fan_in + fan_out))


GLOROT_INITS = ("glorot", "glorot_zero_bias")


def _glorot_intercept(rng, weight_init, bound, n_out, dtype):
    """The bias of a Glorot init: uniform in +-bound as sklearn's MLP draws
    it, or zero (``"glorot_zero_bias"``, torch's ``xavier_uniform_`` with
    zeroed biases, as Keras and biotorch start)."""
    if weight_init == "glorot_zero_bias":
        return np.zeros(n_out, dtype=dtype)
    return rng.uniform(-bound, bound, n_out).astype(dtype, copy=False)


class Layer:
    """What every layer type shares: the array operations it computes with.

    Attributes
    ----------
    ops : ArrayOps or None
        Set by the network; not pickled (the network sets it again on load).
    """

    ops = None

    def array_ops(self, array):
        """``ops``, or those of ``array``'s namespace for a layer outside a
        network."""
        return array_ops(array) if self.ops is None else self.ops

    def move(self, converter):
        """Replace each array the layer owns by ``converter(array)``, in place.

        Parameters
        ----------
        converter : callable
            Maps an array to its copy in another namespace or device.
        """
        for name in self.param_names:
            setattr(self, name, converter(getattr(self, name)))

    def __getstate__(self):
        # ArrayOps hold modules; the network hands them out again on load.
        state = self.__dict__.copy()
        state.pop("ops", None)
        return state


class _FlatOutput(Layer):
    """Layers whose output is a plain (n_samples, n_out) matrix."""

    @property
    def output_shape(self):
        return (self.n_out,)

    def as_output(self, flat):
        return flat


class DenseLayer(_FlatOutput):
    """Fully connected layer ``A = X @ coef + intercept``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    """

    kind = "dense"
    activated = True
    param_names = ("coef", "intercept")
    regularized = (True, False)
    weights_index = 0

    def __init__(self, n_in, n_out):
        self.n_in = n_in
        self.n_out = n_out

    @property
    def weights(self):
        return self.coef

    @property
    def feedback_shape(self):
        """``coef.T``'s: ``backward`` multiplies the delta by it."""
        return (self.n_out, self.n_in)

    @property
    def feedback_width(self):
        return self.n_in

    def as_feedback(self, W):
        return W.T

    def backward_weights(self):
        return self.coef.T

    @property
    def params(self):
        return [self.coef, self.intercept]

    @property
    def n_params(self):
        return self.n_in * self.n_out + self.n_out

    @property
    def forward_macs(self):
        """Multiply-adds per sample of the forward product (``skdfa bench``)."""
        return self.n_in * self.n_out

    def fans(self):
        return self.n_in, self.n_out

    def initialize(self, rng, weight_init, activation, dtype):
        """Draw ``coef`` and ``intercept``.

        ``"glorot"``: both uniform in +-sqrt(6 / (n_in + n_out)) (sklearn's MLP);
        ``"glorot_zero_bias"``: the same weights, zero biases; ``"zeros"``: both zero; ``"normal"``: standard normal weights and zero
        biases (the original 2017 notebooks).
        """
        shape = (self.n_in, self.n_out)
        if weight_init in GLOROT_INITS:
            bound = _glorot_bound(self.n_in, self.n_out, activation)
            self.coef = rng.uniform(-bound, bound, shape).astype(dtype, copy=False)
            self.intercept = _glorot_intercept(rng, weight_init, bound, self.n_out, dtype)
        elif weight_init == "normal":
            self.coef = rng.standard_normal(shape).astype(dtype, copy=False)
            self.intercept = np.zeros(self.n_out, dtype=dtype)
        else:
            self.coef = np.zeros(shape, dtype=dtype)
            self.intercept = np.zeros(self.n_out, dtype=dtype)

    def forward(self, X, out, training=False):
        return self.array_ops(self.coef).affine(X, self.coef, self.intercept, out=out)

    def backward(self, delta, feedback=None):
        return delta @ (self.coef.T if feedback is None else feedback)

    def weight_matrix(self):
        return self.coef

    def gradients(self, X, delta, grads):
        coef_grad, intercept_grad = grads
        ops = self.array_ops(self.coef)
        ops.matmul(X.T, delta, out=coef_grad)
        ops.column_sums(delta, out=intercept_grad)


# Largest dense R that rd_matrix="gaussian" builds (bytes): beyond it, "dct"
# is the only sensible choice and the layer says so instead of exhausting memory.
_MAX_DENSE_R_BYTES = 1 << 32


class _GaussianMatrix:
    """Dense ``R`` of shape (n_out, n_in) with N(0, 1 / n_in) entries.

    Every row has unit expected norm, so ``R`` preserves the variance of its
    input. It is stored transposed, ``(n_in, n_out)``, like a dense ``coef``.
    """

    def __init__(self, n_in, n_out, rng, dtype):
        nbytes = n_in * n_out * np.dtype(dtype).itemsize
        if nbytes > _MAX_DENSE_R_BYTES:
            raise ValueError(
                f"rd_matrix='gaussian' cannot serve a layer of shape ({n_in}, "
                f"{n_out}): its dense R would take {nbytes / 2**30:.1f} GiB (limit "
                f"{_MAX_DENSE_R_BYTES / 2**30:.0f} GiB). Use rd_matrix='dct', which "
                "never forms R."
            )
        self.RT = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(
            dtype, copy=False
        )

    def move(self, converter):
        """Replace ``RT`` by ``converter(RT)``."""
        self.RT = converter(self.RT)

    def apply(self, U, ops=None):
        """``U @ R.T``; ``U`` may be sparse."""
        return U @ self.RT

    def apply_transpose(self, G, ops=None):
        """``G @ R``."""
        return G @ self.RT.T


class _DCTMatrix:
    """Structured ``R = P C D`` applied in O(n log n), never formed (ACDC-like).

    ``D``: random signs scaled by ``sqrt(m / n_in)``; ``C``: the orthonormal
    DCT-II of size ``m = max(n_in, n_out)`` of the input zero-padded to ``m``;
    ``P``: when ``n_out < n_in``, ``n_out`` of the ``m`` coefficients chosen at
    random, else all of them (no gather). Chosen coefficients keep their
    order: a layer's output order does not matter, and a sorted gather is
    several times faster. The scale gives every row of ``R`` unit mean
    squared norm (the padded input's energy spreads over ``m`` coefficients),
    so outputs have the variance of ``"gaussian"``'s. The transpose scatters
    into ``m`` coefficients, applies the inverse DCT (the transpose of an
    orthonormal one), truncates to ``n_in`` and multiplies by the signs.
    """

    def __init__(self, n_in, n_out, rng, dtype):
        self.n_in = n_in
        self.m = max(n_in, n_out)
        scale = np.sqrt(self.m / n_in)
        self.signs = np.where(rng.randint(2, size=n_in), scale, -scale).astype(dtype)
        self.rows = None if n_out == self.m else np.sort(rng.permutation(self.m)[:n_out])

    def move(self, converter):
        """Replace the signs and the chosen rows by their converted copies."""
        self.signs = converter(self.signs)
        if self.rows is not None:
            self.rows = converter(self.rows)

    def apply(self, U, ops=None):
        """``U @ R.T``; a sparse ``U`` is densified (the DCT needs dense rows).
        ``ops``: the layer's array operations (None: the signs' namespace's)."""
        ops = array_ops(self.signs) if ops is None else ops
        U = ops.to_dense(U)
        coefficients = ops.dct(U * self.signs, self.m)
        if self.rows is None:
            return coefficients
        return ops.xp.take(coefficients, self.rows, axis=1)

    def apply_transpose(self, G, ops=None):
        """``G @ R`` (``ops`` as in :meth:`apply`)."""
        ops = array_ops(self.signs) if ops is None else ops
        if self.rows is None:
            coefficients = G
        else:
            coefficients = ops.xp.zeros(
                (G.shape[0], self.m), dtype=G.dtype, device=ops.device
            )
            coefficients[:, self.rows] = G
        # Only the scatter buffer is ours to overwrite, never G.
        V = ops.idct(coefficients, overwrite=self.rows is not None)
        V = V[:, : self.n_in]
        V *= self.signs
        return V


RD_MATRICES = {"gaussian": _GaussianMatrix, "dct": _DCTMatrix}


class RDLayer(_FlatOutput):
    """Random-diagonal layer ``A = ((X * d1) @ R.T) * d2 + intercept``.

    ``R`` is a fixed random (n_out, n_in) matrix; only the diagonals ``d1``
    (n_in) and ``d2`` (n_out) and the bias train, so the layer has
    ``n_in + 2 * n_out`` parameters. Whatever the learning rule, the delta it
    receives at ``A`` becomes gradients by exact back-propagation through the
    layer's own ``R``: the rule decides only how deltas travel between layers.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    matrix : {"gaussian", "dct"}, default="gaussian"
        The kind of ``R`` (a key of ``RD_MATRICES``): dense gaussian, or a
        DCT with random signs and coefficient selection, applied without
        forming ``R``.
    """

    kind = "rd"
    activated = True
    param_names = ("d1", "d2", "intercept")
    regularized = (True, True, False)
    # No weight matrix: R is fixed, and the diagonals have no signs to copy.
    weights = None
    weights_index = None

    def __init__(self, n_in, n_out, matrix="gaussian"):
        self.n_in = n_in
        self.n_out = n_out
        self.matrix = matrix

    @property
    def feedback_shape(self):
        """A dense stand-in for the layer's whole map, like a dense ``coef.T``."""
        return (self.n_out, self.n_in)

    @property
    def feedback_width(self):
        return self.n_in

    def backward_weights(self):
        return self.weight_matrix().T

    @property
    def params(self):
        return [self.d1, self.d2, self.intercept]

    @property
    def n_params(self):
        return self.n_in + 2 * self.n_out

    @property
    def forward_macs(self):
        """Multiply-adds per sample of the product by ``R`` (``skdfa bench``)."""
        return self.n_in * self.n_out

    def move(self, converter):
        """Replace the parameters and the fixed matrix ``R`` by their converted copies."""
        super().move(converter)
        self.R.move(converter)

    def initialize(self, rng, weight_init, activation, dtype):
        """Draw ``R``'s seed, then the diagonals and the bias, from ``rng``.

        ``"glorot"``: ``d1 = 1`` and ``d2`` constant, chosen so that the
        effective weights ``d2_i R_ij d1_j`` have the variance of Glorot's
        uniform init; the bias uniform in +-bound (as ``DenseLayer``), or zero
        for ``"glorot_zero_bias"``.
        Constant diagonals lose nothing: ``R`` is already random, and random
        signs on ``d1`` would only redraw its columns' signs.
        ``"zeros"``: ``d1 = 1``, ``d2 = 0`` and a zero bias. The layer's map
        starts at zero, like a dense layer's, yet ``d2``'s gradient
        ``sum(delta * ((X * d1) @ R.T))`` is not zero, so a layer that gets
        its delta through a fixed random matrix (DFA, DRTP, FA) learns; zero
        ``d1`` and ``d2`` would be a saddle no rule leaves. Under ``"bp"`` the
        hidden deltas pass through the next layer's ``d2 = 0`` and vanish, as
        with zero dense weights. ``"normal"``: standard normal diagonals
        and a zero bias.
        """
        # R gets its own stream, seeded from rng: the same random_state gives
        # the same R, and R's size does not shift the other parameters' draws.
        seed = rng.randint(np.iinfo(np.int32).max)
        self.R = RD_MATRICES[self.matrix](
            self.n_in, self.n_out, np.random.RandomState(seed), dtype
        )
        if weight_init in GLOROT_INITS:
            bound = _glorot_bound(self.n_in, self.n_out, activation)
            # Var(d2 * R_ij) = gain^2 / n_in = bound^2 / 3, Glorot's variance.
            gain = bound * np.sqrt(self.n_in / 3.0)
            self.d1 = np.ones(self.n_in, dtype=dtype)
            self.d2 = np.full(self.n_out, gain, dtype=dtype)
            self.intercept = _glorot_intercept(rng, weight_init, bound, self.n_out, dtype)
        elif weight_init == "normal":
            self.d1 = rng.standard_normal(self.n_in).astype(dtype, copy=False)
            self.d2 = rng.standard_normal(self.n_out).astype(dtype, copy=False)
            self.intercept = np.zeros(self.n_out, dtype=dtype)
        else:
            self.d1 = np.ones(self.n_in, dtype=dtype)
            self.d2 = np.zeros(self.n_out, dtype=dtype)
            self.intercept = np.zeros(self.n_out, dtype=dtype)

    def _project(self, X):
        """``Z = (X * d1) @ R.T``; a sparse X stays sparse for the product."""
        ops = self.array_ops(self.d1)
        return self.R.apply(ops.scale_columns(X, self.d1), ops)

    def forward(self, X, out, training=False):
        Z = self._project(X)
        if training:
            # gradients() needs Z for d2's gradient; it releases it.
            self._Z = Z
        self.array_ops(self.d2).multiply(Z, self.d2, out=out)
        out += self.intercept
        return out

    def weight_matrix(self):
        """``diag(d1) @ R.T @ diag(d2)``, formed by mapping the identity."""
        ops = self.array_ops(self.d1)
        identity = ops.xp.eye(self.n_in, dtype=self.d1.dtype, device=ops.device)
        return self.R.apply(identity * ops.xp.reshape(self.d1, (-1, 1)), ops) * self.d2

    def backward(self, delta, feedback=None):
        if feedback is not None:
            return delta @ feedback
        dX = self.R.apply_transpose(delta * self.d2, self.array_ops(self.d2))
        dX *= self.d1
        return dX

    def gradients(self, X, delta, grads):
        d1_grad, d2_grad, intercept_grad = grads
        Z, self._Z = self._Z, None
        ops = self.array_ops(self.d2)
        ops.column_dots(delta, Z, out=d2_grad)
        G = self.R.apply_transpose(delta * self.d2, ops)
        ops.column_dots(G, X, out=d1_grad)
        ops.column_sums(delta, out=intercept_grad)


LAYERS = {"dense": DenseLayer, "rd": RDLayer}
