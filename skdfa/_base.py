"""Activations, their derivatives and the output losses, as registries of small
in-place numpy functions (the layout of ``sklearn.neural_network._base``).

Adding an activation is one function in ``ACTIVATIONS`` and one in
``DERIVATIVES``; adding an output is one entry in ``OUTPUTS``.
"""

import numpy as np
from scipy.special import expit as logistic_sigmoid
from scipy.special import log_expit


def _identity(X):
    """Identity activation, in place (nothing to do)."""


def _logistic(X):
    logistic_sigmoid(X, out=X)


def _tanh(X):
    np.tanh(X, out=X)


def _relu(X):
    np.maximum(X, 0, out=X)


def _softmax(X):
    X -= X.max(axis=1, keepdims=True)
    np.exp(X, out=X)
    X /= X.sum(axis=1, keepdims=True)


ACTIVATIONS = {
    "identity": _identity,
    "tanh": _tanh,
    "logistic": _logistic,
    "relu": _relu,
    "softmax": _softmax,
}


# Derivatives are written in terms of the activation's *output* Z, so the
# pre-activations never need to be kept; each multiplies ``delta`` in place.
# ``scratch`` is a buffer shaped like Z that the function may overwrite.
def _identity_derivative(Z, delta, scratch):
    """The derivative of the identity is 1: nothing to do."""


def _logistic_derivative(Z, delta, scratch):
    np.subtract(1, Z, out=scratch)
    scratch *= Z
    delta *= scratch


def _tanh_derivative(Z, delta, scratch):
    np.multiply(Z, Z, out=scratch)
    np.subtract(1, scratch, out=scratch)
    delta *= scratch


def _relu_derivative(Z, delta, scratch):
    delta[Z <= 0] = 0


DERIVATIVES = {
    "identity": _identity_derivative,
    "tanh": _tanh_derivative,
    "logistic": _logistic_derivative,
    "relu": _relu_derivative,
}


# Output losses are computed from the output pre-activations A (numerically
# stable, no log of a rounded probability). Each returns the per-sample loss.
def _squared_loss(A, Y):
    # Averaged over the outputs, as MLPRegressor reports it; the error that
    # trains the network stays P - Y (the gradient of the sum), as in MLPRegressor.
    diff = A - Y
    return (0.5 / diff.shape[1]) * np.einsum("ij,ij->i", diff, diff)


def _log_loss(A, Y):
    # -sum_k y_k log softmax(a)_k, with log softmax = a - max - log sum exp(a - max);
    # written out because scipy's logsumexp costs more than the rest of the
    # loss on small outputs.
    shifted = A - A.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return log_norm * Y.sum(axis=1) - np.einsum("ij,ij->i", shifted, Y)


def _binary_log_loss(A, Y):
    # -[y log s(a) + (1 - y) log(1 - s(a))] = -log s(a) + (1 - y) a
    return np.einsum("ij->i", (1 - Y) * A - log_expit(A))


# Every output pairs an activation with its canonical loss, so the error
# dLoss/dA at the output is always P - Y.
OUTPUTS = {
    "identity": _squared_loss,
    "softmax": _log_loss,
    "logistic": _binary_log_loss,
}
