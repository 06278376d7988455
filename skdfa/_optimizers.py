"""Stochastic optimizers, in the shape of ``sklearn.neural_network._stochastic_optimizers``.

Each optimizer is a small class whose
``update_params(params, grads, weight_decay)`` changes the parameter arrays
*in place*: the network, the estimator's fitted attributes and the optimizer
all share the same arrays, and updates allocate nothing but one scratch buffer
per parameter (none for torch's Adam and SGD kernels). The training loop does
not know which optimizer it drives. The optimizer holds no reference to the
parameters, so it can be copied (snapshots, pickles) on its own.

Each optimizer has two kernels with the same arithmetic, one of which it picks
from the parameters' namespace (``_array_ops.py``) at its first update, and
keeps (it is chosen again only after unpickling, a snapshot's restore or a
move between namespaces): ``_update``, one parameter at a time through
``ArrayOps`` (numpy's ``out=`` path, or any array API namespace), and
``_update_foreach``, every parameter at once through torch's
``torch._foreach_*`` kernels. Both receive the ``ArrayOps``.

The L2 penalty's gradient, ``weight_decay * param``, is added by the
optimizer, not by the network: torch's fused Adam applies it inside its one
pass over each parameter (its ``weight_decay``), where adding it to the
gradient first would cost another pass over every weight per step.
"""

from ._array_ops import array_ops


class BaseOptimizer:
    """What every optimizer shares: the update loop and stopping.

    Parameters
    ----------
    params : list of ndarray
        The parameters, used for the shapes and dtypes of the state.
    learning_rate_init : float
        The initial learning rate.
    learning_rate : {"constant", "invscaling", "adaptive"}
        The schedule, applied by :class:`SGDOptimizer` only: as in
        scikit-learn, adaptive optimizers keep ``learning_rate_init``.
    power_t : float
        Exponent of ``"invscaling"``.
    """

    # Names of the per-parameter state lists, passed to ``_update`` in order.
    state_names = ()
    # Buffers and the chosen kernel, rebuilt by the next update rather than
    # pickled or copied.
    transient = ("_scratch", "_kernel")
    # Whether ``_update_foreach`` needs the scratch buffers (``_update`` does).
    foreach_scratch = False

    def __init__(self, params, learning_rate_init, learning_rate, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.schedule = learning_rate
        self.power_t = power_t
        # Created by the first update, in the parameters' namespace.
        self._scratch = None
        self._kernel = None

    def update_params(self, params, grads, weight_decay=None):
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        params : list of arrays
            Updated in place.
        grads : list of arrays
            The loss gradients, without the L2 penalty; may be overwritten.
        weight_decay : list of float, default=None
            Per parameter, the L2 penalty's coefficient: the step follows
            ``grad + weight_decay * param``. ``None``: no penalty.
        """
        if self._kernel is None:
            self._kernel = self._choose_kernel(array_ops(params[0]), params)
        if weight_decay is None:
            weight_decay = [0.0] * len(params)
        self._kernel(params, grads, weight_decay)

    def _choose_kernel(self, ops, params):
        """The step for the parameters' namespace: a function of
        ``(params, grads, weight_decay)``."""
        if self.foreach_scratch or not ops.foreach:
            self._scratch = [ops.empty(p.shape, p.dtype) for p in params]
        states = [getattr(self, name) for name in self.state_names]
        if ops.foreach:
            def step(params, grads, weight_decay):
                self._update_foreach(ops, params, grads, weight_decay, self._scratch, *states)
            return step

        def step(params, grads, weight_decay):
            for i, (param, grad) in enumerate(zip(params, grads)):
                if weight_decay[i]:
                    ops.add_scaled(grad, param, weight_decay[i])
                self._update(ops, param, grad, self._scratch[i], *(state[i] for state in states))
        return step

    def iteration_ends(self, time_step):
        """Called at the end of each epoch (schedules happen here)."""

    def trigger_stopping(self, msg, verbose):
        """Decide whether training stops once it no longer improves: it does."""
        if verbose:
            print(msg + " Stopping.")
        return True

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(dict.fromkeys(self.transient))
        return state


def _add_decay(torch, params, grads, weight_decay):
    """``grad += weight_decay * param``, one kernel per distinct coefficient
    (the network has one: ``alpha`` over the batch's total sample weight)."""
    for coefficient, indices in _groups(weight_decay).items():
        if coefficient:
            torch._foreach_add_(
                [grads[i] for i in indices], [params[i] for i in indices], alpha=coefficient
            )


def _groups(weight_decay):
    """Indices of the parameters, grouped by their decay coefficient."""
    groups = {}
    for i, coefficient in enumerate(weight_decay):
        groups.setdefault(coefficient, []).append(i)
    return groups


class SGDOptimizer(BaseOptimizer):
    """Stochastic gradient descent with momentum and Nesterov's momentum.

    Parameters
    ----------
    params, learning_rate_init, learning_rate, power_t
        See :class:`BaseOptimizer`.
    momentum : float
        Momentum, in [0, 1].
    nesterov : bool
        Whether to use Nesterov's momentum.
    step_epochs : sequence of int
        The epochs after which ``"step"`` multiplies the rate by ``step_factor``.
    step_factor : float
    """

    hyperparameters = ("momentum", "nesterovs_momentum", "step_epochs", "step_factor")
    state_names = ("velocities",)

    def __init__(
        self, params, learning_rate_init, learning_rate, power_t, momentum, nesterov,
        step_epochs=(), step_factor=0.1,
    ):
        super().__init__(params, learning_rate_init, learning_rate, power_t)
        self.momentum = momentum
        self.nesterov = nesterov
        if not hasattr(step_epochs, "__iter__"):
            step_epochs = (step_epochs,)
        self.step_epochs = tuple(int(e) for e in step_epochs)
        self.step_factor = float(step_factor)
        self.epochs = 0
        self.velocities = [array_ops(p).zeros_like(p) for p in params]

    def iteration_ends(self, time_step):
        """Apply the ``invscaling`` or ``step`` schedule at the end of an epoch.

        ``"invscaling"`` divides the initial rate by ``(t + 1) ** power_t``,
        ``t`` counting the samples seen; ``"step"`` multiplies the rate by
        ``step_factor`` at the end of each epoch listed in ``step_epochs``.
        """
        self.epochs += 1
        if self.schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (
                (time_step + 1) ** self.power_t
            )
        elif self.schedule == "step":
            self.learning_rate = float(self.learning_rate_init) * self.step_factor ** sum(
                epoch <= self.epochs for epoch in self.step_epochs
            )

    def trigger_stopping(self, msg, verbose):
        """Decide whether training stops once it no longer improves.

        Returns ``True`` to stop; the ``"adaptive"`` schedule instead divides
        the learning rate by 5 and goes on while it stays above 1e-6.
        """
        if self.schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False

    def _update(self, ops, param, grad, scratch, velocity):
        # v <- momentum * v - lr * g
        velocity *= self.momentum
        ops.multiply(grad, self.learning_rate, out=scratch)
        velocity -= scratch
        if self.nesterov:
            # param <- param + momentum * v - lr * g
            param -= scratch
            ops.multiply(velocity, self.momentum, out=scratch)
            param += scratch
        else:
            param += velocity

    def _update_foreach(self, ops, params, grads, weight_decay, scratch, velocities):
        torch = ops.torch
        _add_decay(torch, params, grads, weight_decay)
        torch._foreach_mul_(velocities, self.momentum)
        torch._foreach_add_(velocities, grads, alpha=-self.learning_rate)
        if self.nesterov:
            torch._foreach_add_(params, grads, alpha=-self.learning_rate)
            torch._foreach_add_(params, velocities, alpha=self.momentum)
        else:
            torch._foreach_add_(params, velocities)


class AdamOptimizer(BaseOptimizer):
    """Adam (Kingma and Ba, 2014).

    The moments are stored rescaled, ``M = m / (1 - beta_1)`` and
    ``V = v / (1 - beta_2)``, so their updates ``M <- beta_1 M + g`` and
    ``V <- beta_2 V + g^2`` need no multiplication of the gradient; the
    constants reappear in the step, which also carries the bias correction.
    The updates are Adam's exactly (up to rounding). On torch, the update is
    torch's fused Adam kernel, one pass over each parameter, which keeps the
    moments ``m`` and ``v`` themselves; ``moments`` says which form is
    stored, and a model moved between namespaces converts it once.

    Parameters
    ----------
    params, learning_rate_init, learning_rate, power_t
        See :class:`BaseOptimizer`.
    beta_1, beta_2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float
        Value added to the denominator for numerical stability.
    """

    hyperparameters = ("beta_1", "beta_2", "epsilon")
    state_names = ("ms", "vs")
    transient = ("_scratch", "_kernel", "_steps")

    def __init__(
        self, params, learning_rate_init, learning_rate, power_t, beta_1, beta_2, epsilon
    ):
        super().__init__(params, learning_rate_init, learning_rate, power_t)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.ms = [array_ops(p).zeros_like(p) for p in params]
        self.vs = [array_ops(p).zeros_like(p) for p in params]
        self.moments = "rescaled"
        self._steps = None

    def _store_moments(self, form):
        """Convert the stored moments to ``form``: "rescaled" or "standard"."""
        if self.moments == form:
            return
        scale_m, scale_v = 1 - self.beta_1, 1 - self.beta_2
        if form == "rescaled":
            scale_m, scale_v = 1 / scale_m, 1 / scale_v
        for m, v in zip(self.ms, self.vs):
            m *= scale_m
            v *= scale_v
        self.moments = form

    def _choose_kernel(self, ops, params):
        # The moments take the chosen kernel's form, once.
        self._store_moments("standard" if ops.foreach else "rescaled")
        return super()._choose_kernel(ops, params)

    def update_params(self, params, grads, weight_decay=None):
        self.t += 1
        root = (1 - self.beta_2) ** 0.5
        # step * m / (sqrt(v) + eps) = step' * M / (sqrt(V) + eps')
        self._step = (
            self.learning_rate
            * (1 - self.beta_2**self.t) ** 0.5
            / (1 - self.beta_1**self.t)
            * (1 - self.beta_1)
            / root
        )
        self._epsilon = self.epsilon / root
        super().update_params(params, grads, weight_decay)

    def _update(self, ops, param, grad, scratch, m, v):
        m *= self.beta_1
        m += grad
        ops.multiply(grad, grad, out=scratch)
        v *= self.beta_2
        v += scratch
        ops.sqrt(v, out=scratch)
        scratch += self._epsilon
        ops.divide(m, scratch, out=scratch)
        scratch *= self._step
        param -= scratch

    def _update_foreach(self, ops, params, grads, weight_decay, scratch, ms, vs):
        torch = ops.torch
        if self._steps is None:
            # The fused kernel reads the step count from one tensor per parameter.
            self._steps = [
                torch.tensor(float(self.t), dtype=torch.float32, device=p.device)
                for p in params
            ]
        else:
            torch._foreach_add_(self._steps, 1)
        # One kernel call per decay coefficient; its weight_decay is the L2
        # penalty's gradient added to grad (not AdamW's decoupled decay).
        for coefficient, indices in _groups(weight_decay).items():
            torch._fused_adam_(
                *([state[i] for i in indices] for state in (params, grads, ms, vs)),
                [], [self._steps[i] for i in indices],
                amsgrad=False, lr=self.learning_rate, beta1=self.beta_1,
                beta2=self.beta_2, weight_decay=coefficient, eps=self.epsilon,
                maximize=False,
            )


class RMSpropOptimizer(BaseOptimizer):
    """RMSprop (Tieleman and Hinton, 2012), the optimizer of the DFA paper.

    Parameters
    ----------
    params, learning_rate_init, learning_rate, power_t
        See :class:`BaseOptimizer`.
    rho : float
        Decay rate of the running mean of squared gradients, in [0, 1).
    epsilon : float
        Value added to the denominator for numerical stability.
    """

    hyperparameters = ("rho", "epsilon")
    state_names = ("squares",)
    foreach_scratch = True

    def __init__(
        self, params, learning_rate_init, learning_rate, power_t, rho, epsilon
    ):
        super().__init__(params, learning_rate_init, learning_rate, power_t)
        self.rho = rho
        self.epsilon = epsilon
        self.squares = [array_ops(p).zeros_like(p) for p in params]

    def _update(self, ops, param, grad, scratch, square):
        # s <- s + (1 - rho) (g^2 - s)
        ops.multiply(grad, grad, out=scratch)
        scratch -= square
        scratch *= 1 - self.rho
        square += scratch
        # param <- param - lr * g / (sqrt(s) + eps)
        ops.sqrt(square, out=scratch)
        scratch += self.epsilon
        ops.divide(grad, scratch, out=scratch)
        scratch *= self.learning_rate
        param -= scratch

    def _update_foreach(self, ops, params, grads, weight_decay, scratch, squares):
        torch = ops.torch
        _add_decay(torch, params, grads, weight_decay)
        # s <- rho s + (1 - rho) g^2, the same average as _update's
        torch._foreach_mul_(squares, self.rho)
        torch._foreach_addcmul_(squares, grads, grads, value=1 - self.rho)
        for square, root in zip(squares, scratch):
            torch.sqrt(square, out=root)
        torch._foreach_add_(scratch, self.epsilon)
        torch._foreach_addcdiv_(params, grads, scratch, value=-self.learning_rate)


OPTIMIZERS = {"sgd": SGDOptimizer, "adam": AdamOptimizer, "rmsprop": RMSpropOptimizer}


def make_optimizer(estimator, params):
    """Build the optimizer named by ``estimator.solver`` from its parameters."""
    optimizer = OPTIMIZERS[estimator.solver]
    return optimizer(
        params,
        estimator.learning_rate_init,
        estimator.learning_rate,
        estimator.power_t,
        *(getattr(estimator, name) for name in optimizer.hyperparameters),
    )
