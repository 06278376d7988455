"""Full-batch L-BFGS, for the rule whose update is the loss's gradient.

It follows ``MLPClassifier._fit_lbfgs``: scipy's L-BFGS-B minimises the
training loss (data loss plus L2 penalty, sample weights honoured) over every
parameter packed into one float64 vector, with ``max_iter``, ``max_fun`` and
``gtol=tol``. The loss and its gradient are the engine's: one ``train_batch``
over the whole data set (forward pass, back-propagation, the layers'
gradients); this module only packs and unpacks the parameters.
"""

import numpy as np
import scipy.optimize
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result

from ._network import Workspace, train_batch
from ._rules import get_rule


def check_lbfgs(est):
    """Raise unless ``est``'s settings give L-BFGS a loss and its gradient."""
    if not get_rule(est.rule).exact_gradient:
        raise ValueError(
            f"solver='lbfgs' cannot train rule={est.rule!r}: L-BFGS minimises a "
            "loss along its gradient, and only a rule whose exact_gradient is True "
            "(rule='bp', back-propagation) computes that gradient. The update of "
            f"rule={est.rule!r} is not the "
            "gradient of any loss (its hidden layers learn from feedback that "
            "stands in for the forward weights), so L-BFGS's line search and "
            "curvature estimates would follow nothing. Use rule='bp' with "
            f"solver='lbfgs', or rule={est.rule!r} with solver='adam', 'sgd' "
            "or 'rmsprop'."
        )
    if any(est._dropout_rates()):
        raise ValueError(
            "solver='lbfgs' minimises one fixed loss, and dropout makes the "
            f"loss random at every evaluation (dropout={est.dropout!r}). Use "
            "dropout=0.0 with solver='lbfgs', or a stochastic solver ('adam', "
            "'sgd', 'rmsprop') with dropout."
        )


class _Objective:
    """The training loss and its gradient as functions of a packed vector.

    ``train_batch`` reports the squared error averaged over the outputs (as
    MLPRegressor does) while its output error is the gradient of their sum;
    L-BFGS needs the function whose gradient it gets, so with identity
    outputs the data loss is scaled back to that sum.
    """

    def __init__(self, net, X, Y, sample_weight, alpha):
        self.net, self.X, self.Y = net, X, Y
        self.sample_weight, self.alpha = sample_weight, alpha
        # bp learns no feedback: the layers' parameters are all of them.
        self.params = net.params
        self.ws = Workspace(net, X.shape[0], (0.0, 0.0), None)
        self.bounds = np.cumsum([0] + [int(np.prod(p.shape)) for p in self.params])
        self.output_scale = net.units[-1] if net.output == "identity" else 1
        ops = net.ops
        self.weight_sum = (
            X.shape[0] if sample_weight is None else ops.total(sample_weight)
        )
        if self.weight_sum <= 0:
            raise ValueError(
                "The sample weights sum to zero: solver='lbfgs' has no loss to minimise."
            )

    def pack(self):
        ops = self.net.ops
        return np.concatenate(
            [ops.to_numpy(p).ravel() for p in self.params]
        ).astype(np.float64, copy=False)

    def unpack(self, x):
        ops = self.net.ops
        for p, start, stop in zip(self.params, self.bounds[:-1], self.bounds[1:]):
            ops.copy_into(p, ops.asarray(x[start:stop].reshape(p.shape), dtype=p.dtype))

    def loss(self, x):
        """The loss as the estimator reports it (``loss_``) at ``x``."""
        return float(self._batch(x).loss)

    def _batch(self, x):
        self.unpack(x)
        return train_batch(self.net, self.ws, self.X, self.Y, self.sample_weight, self.alpha)

    def __call__(self, x):
        ops = self.net.ops
        result = self._batch(x)
        loss = float(result.loss)
        penalty = 0.0
        if self.alpha:
            squares = ops.total_sum_squares(self.net.regularized_params)
            penalty = 0.5 * self.alpha * squares / self.weight_sum
        objective = (loss - penalty) * self.output_scale + penalty
        grad = np.empty(self.bounds[-1])
        decay = result.weight_decay
        for i, (source, g) in enumerate(zip(self.ws.decay_sources, self.ws.grads)):
            part = grad[self.bounds[i] : self.bounds[i + 1]]
            part[:] = ops.to_numpy(g).ravel()
            if decay is not None and decay[i]:
                part += decay[i] * ops.to_numpy(source).ravel()
        return objective, grad


def fit_lbfgs(est, X, Y, sample_weight):
    """Train ``est._fit_state.network`` on all of (X, Y) with scipy's L-BFGS-B.

    Sets ``n_iter_`` (L-BFGS iterations) and ``loss_``; warns
    (ConvergenceWarning) when it stops before convergence, as MLPClassifier.
    A run that ends on non-finite weights or loss raises, and the network
    keeps the weights it started from.
    """
    objective = _Objective(est._fit_state.network, X, Y, sample_weight, est.alpha)
    start = objective.pack()
    iprint = 1 if est.verbose is True or est.verbose >= 1 else -1
    result = scipy.optimize.minimize(
        objective,
        start,
        method="L-BFGS-B",
        jac=True,
        options={
            "maxfun": est.max_fun,
            "maxiter": est.max_iter,
            "gtol": est.tol,
            **_get_additional_lbfgs_options_dict("iprint", iprint),
        },
    )
    if not np.all(np.isfinite(result.x)):
        objective.unpack(start)
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may"
            " contain large values and need to be preprocessed."
        )
    loss = objective.loss(result.x)
    if not np.isfinite(loss):
        objective.unpack(start)
        raise ValueError(
            f"Solver ended on a non-finite loss ({loss}). The input data may "
            "contain large values and need to be preprocessed (for example with "
            "sklearn.preprocessing.StandardScaler)."
        )
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    est.loss_ = loss
