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
- ``backward(delta)``: ``dLoss/dX`` given ``delta = dLoss/dA`` (back-propagation
  through the layer, used by ``rule="bp"`` and by the alignment diagnostics);
- ``gradients(X, delta, grads)``: writes ``dLoss/dparam`` into ``grads``;
- ``n_params``: the number of trainable scalars.

A new layer type is one class here.
"""

import numpy as np
import scipy.sparse as sp


def _glorot_bound(fan_in, fan_out, activation):
    # Glorot and Bengio (2010), with sklearn's factor 2 for the logistic.
    factor = 2.0 if activation == "logistic" else 6.0
    return np.sqrt(factor / (fan_in + fan_out))


class DenseLayer:
    """Fully connected layer ``A = X @ coef + intercept``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    """

    param_names = ("coef", "intercept")
    regularized = (True, False)

    def __init__(self, n_in, n_out):
        self.n_in = n_in
        self.n_out = n_out

    @property
    def params(self):
        return [self.coef, self.intercept]

    @property
    def n_params(self):
        return self.n_in * self.n_out + self.n_out

    def initialize(self, rng, weight_init, activation, dtype):
        """Draw ``coef`` and ``intercept``.

        ``"glorot"``: both uniform in +-sqrt(6 / (n_in + n_out)) (sklearn's MLP);
        ``"zeros"``: both zero; ``"normal"``: standard normal weights and zero
        biases (the original 2017 notebooks).
        """
        shape = (self.n_in, self.n_out)
        if weight_init == "glorot":
            bound = _glorot_bound(self.n_in, self.n_out, activation)
            self.coef = rng.uniform(-bound, bound, shape).astype(dtype, copy=False)
            self.intercept = rng.uniform(-bound, bound, self.n_out).astype(
                dtype, copy=False
            )
        elif weight_init == "normal":
            self.coef = rng.standard_normal(shape).astype(dtype, copy=False)
            self.intercept = np.zeros(self.n_out, dtype=dtype)
        else:
            self.coef = np.zeros(shape, dtype=dtype)
            self.intercept = np.zeros(self.n_out, dtype=dtype)

    def forward(self, X, out, training=False):
        if sp.issparse(X):
            # The sparse product never densifies X.
            out[...] = X @ self.coef
        else:
            np.matmul(X, self.coef, out=out)
        out += self.intercept
        return out

    def backward(self, delta):
        return delta @ self.coef.T

    def gradients(self, X, delta, grads):
        coef_grad, intercept_grad = grads
        if sp.issparse(X):
            coef_grad[...] = X.T @ delta
        else:
            np.matmul(X.T, delta, out=coef_grad)
        np.sum(delta, axis=0, out=intercept_grad)


LAYERS = {"dense": DenseLayer}
