"""Activations, their derivatives and the output losses, as registries of small
in-place functions (the layout of ``sklearn.neural_network._base``).

Adding an activation is one function in ``ACTIVATIONS`` and one in
``DERIVATIVES``; adding an output is one entry in ``OUTPUTS``.
"""

# Every function takes the ``ArrayOps`` of its arrays' namespace (see
# ``_array_ops.py``) and works in place, writing into buffers numpy's way.


def _identity(X, ops):
    """Identity activation, in place (nothing to do)."""


def _logistic(X, ops):
    ops.expit(X, out=X)


def _tanh(X, ops):
    ops.tanh(X, out=X)


def _relu(X, ops):
    ops.relu(X, out=X)


def _exp(X, ops):
    ops.exp(X, out=X)


def _softmax(X, ops):
    xp = ops.xp
    X -= xp.max(X, axis=1, keepdims=True)
    ops.exp(X, out=X)
    X /= xp.sum(X, axis=1, keepdims=True)


ACTIVATIONS = {
    "identity": _identity,
    "tanh": _tanh,
    "logistic": _logistic,
    "relu": _relu,
    "softmax": _softmax,
    "exp": _exp,
}


# Derivatives are written in terms of the activation's *output* Z, so the
# pre-activations never need to be kept; each multiplies ``delta`` in place.
# ``scratch`` is a buffer shaped like Z that the function may overwrite.
def _identity_derivative(Z, delta, scratch, ops):
    """The derivative of the identity is 1: nothing to do."""


def _logistic_derivative(Z, delta, scratch, ops):
    ops.one_minus(Z, out=scratch)
    scratch *= Z
    delta *= scratch


def _tanh_derivative(Z, delta, scratch, ops):
    ops.one_minus_square(Z, out=scratch)
    delta *= scratch


def _relu_derivative(Z, delta, scratch, ops):
    ops.zero_where_nonpositive(Z, delta)


DERIVATIVES = {
    "identity": _identity_derivative,
    "tanh": _tanh_derivative,
    "logistic": _logistic_derivative,
    "relu": _relu_derivative,
}


# Output losses are computed from the output pre-activations A (numerically
# stable, no log of a rounded probability). Each returns the per-sample loss
# and writes the error dLoss/dA = P - Y into ``error`` (every output pairs an
# activation with its canonical loss), computed together: the softmax loss
# and error share one log-softmax.
def _squared_loss(A, Y, error, ops):
    # Averaged over the outputs, as MLPRegressor reports it; the error that
    # trains the network stays P - Y (the gradient of the sum), as in MLPRegressor.
    ops.copy_into(error, A)
    error -= Y
    return (0.5 / error.shape[1]) * ops.row_dots(error, error)


def _log_loss(A, Y, error, ops):
    # -sum_k y_k log softmax(a)_k; softmax(a) = exp(log softmax(a)).
    log_p = ops.log_softmax(A)
    ops.exp(log_p, out=error)
    error -= Y
    return -ops.row_dots(log_p, Y)


def _binary_log_loss(A, Y, error, ops):
    # -[y log s(a) + (1 - y) log(1 - s(a))] = -log s(a) + (1 - y) a
    ops.expit(A, out=error)
    error -= Y
    return ops.xp.sum((1 - Y) * A - ops.log_expit(A), axis=1)


def _half_poisson_deviance(A, Y, error, ops):
    # sum_k y log(y / p) - y + p with p = exp(a) (MLPRegressor's poisson loss):
    # y log y - y a - y + exp(a), where y log y is 0 at y = 0.
    ops.exp(A, out=error)
    xp = ops.xp
    y_log_y = Y * xp.log(xp.where(Y > 0, Y, xp.ones_like(Y)))
    loss = xp.sum(error - Y * A + y_log_y - Y, axis=1)
    error -= Y
    return loss


OUTPUTS = {
    "identity": _squared_loss,
    "exp": _half_poisson_deviance,
    "softmax": _log_loss,
    "logistic": _binary_log_loss,
}
