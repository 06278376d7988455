"""Stochastic optimizers, in the shape of ``sklearn.neural_network._stochastic_optimizers``.

Each optimizer is a small class whose
``update_params(params, grads, weight_decay)`` changes the parameter arrays
*in place*: the network, the estimator's fitted attributes and the optimizer
all share the same arrays, and updates allocate nothing but the scratch that
``bind`` allocates once per fit (none for torch's Adam and SGD kernels). The
training loop does not know which optimizer it drives. The optimizer holds no
reference to the parameters between fits, so it can be copied (snapshots,
pickles) on its own.

Each optimizer has one kernel per kind of namespace, both with the signature
``(ops, params, grads, weight_decay, sources, scratch, *state)``:
``_step_each``, one parameter at a time through ``ArrayOps``, and
``_step_foreach``, every parameter at once through the multi-tensor
primitives of the ops layer (``ops.foreach``: torch's ``_foreach_*`` kernels
and fused Adam). ``_step_each`` runs an optimizer's element-wise ``_update``
over the blocks of ``ops.step_blocks``: on numpy, blocks of a few ten
thousand elements, over which the update's dozen ``out=`` ufuncs stay in
cache rather than each making a pass over memory (the same ufuncs, so the
same rounding, as over whole arrays); elsewhere, the whole arrays. Where
numba is installed, numpy's ``_step_each`` runs instead the optimizer's
``step_loop``, the same update written as one loop over the elements and
compiled (``ops.compiled_step``, see ``_compiled.py``): one pass, and the same
rounding as ``_update``'s ufuncs, element by element. The
training loop hands the optimizer its ``ArrayOps`` once per fit
(:meth:`BaseOptimizer.bind`), which chooses the kernel; the optimizer never
looks the namespace up itself, nor imports torch. Its state (velocities,
moments, squares) has one form whichever kernel moves it, so a model moved
between namespaces continues as if it had stayed.

The L2 penalty's gradient, ``weight_decay[i] * sources[i]``, is added by the
optimizer and by nothing else. ``sources[i]`` is the parameter itself, except
for learned feedback whose penalty is another array's (Kolen-Pollack: its
forward weights', transposed; see ``LearningRule.decay_sources``). Torch's
fused Adam applies a parameter's own penalty inside its one pass over it,
where adding it to the gradient first would cost another pass over every
weight per step.
"""

import numpy as np

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
    ops : ArrayOps, default=None
        The parameters' array operations (the estimator passes its network's);
        None: those of ``params[0]``'s namespace.
    """

    # Names of the per-parameter state lists, passed to the kernels in order.
    state_names = ()
    # What ``bind`` sets up for a fit (kernel, buffers, the ops and the decay
    # sources), rebuilt by the next fit rather than pickled or copied.
    transient = ("_scratch", "_kernel", "_ops", "_sources", "_compiled_step")
    # Whether ``_step_foreach`` needs the scratch buffers (``_step_each`` does).
    foreach_scratch = False
    # ``_update`` as one loop over 1-D arrays, ``(param, grad, *state, decay,
    # *scalars, *options)`` with ``_loop_arguments``'s scalars and options:
    # ``_update``'s operations on each element, in their order (so rounded
    # alike), the penalty first where ``decay`` is not zero (the ufuncs skip
    # a zero penalty, which keeps a zero gradient's sign).
    step_loop = None

    def __init__(self, params, learning_rate_init, learning_rate, power_t, *, ops=None):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.schedule = learning_rate
        self.power_t = power_t
        for name in self.transient:
            setattr(self, name, None)

    @staticmethod
    def _zeros(params, ops):
        """A zero array shaped like each parameter: the state's start."""
        if ops is None:
            ops = array_ops(params[0])
        return [ops.zeros_like(p) for p in params]

    def bind(self, ops, params, decay_sources=None):
        """Choose the kernel for ``ops`` and allocate its buffers; the training
        loop calls it at the start of every fit.

        Parameters
        ----------
        ops : ArrayOps
            The parameters' array operations.
        params : list of arrays
            The parameters the next updates move.
        decay_sources : list of arrays, default=None
            Per parameter, the array whose multiple ``weight_decay[i]`` is the
            L2 penalty's gradient; None: the parameters themselves.
        """
        self._ops = ops
        self._sources = params if decay_sources is None else decay_sources
        if not ops.foreach:
            self._scratch = ops.step_scratch(params)
        elif self.foreach_scratch:
            self._scratch = [ops.empty(p.shape, p.dtype) for p in params]
        self._kernel = self._step_foreach if ops.foreach else self._step_each
        self._compiled_step = (
            None if ops.foreach or self.step_loop is None else ops.compiled_step(self.step_loop)
        )

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
            ``grad + weight_decay * source`` (see :meth:`bind`). ``None``: no
            penalty.
        """
        if self._kernel is None:
            # Used on its own, outside a fit.
            self.bind(array_ops(params[0]), params)
        self._kernel(
            self._ops, params, grads, weight_decay, self._sources, self._scratch,
            *(getattr(self, name) for name in self.state_names),
        )

    def _step_each(self, ops, params, grads, weight_decay, sources, scratch, *state):
        own = _own_decay(ops, params, grads, weight_decay, sources)
        compiled_step = self._compiled_step
        if compiled_step is not None:
            scalars, options = self._loop_arguments()
        for i, (param, grad) in enumerate(zip(params, grads)):
            arrays = (param, grad, *(s[i] for s in state))
            if compiled_step is not None and compiled_step(arrays, (own[i], *scalars), options):
                continue
            for block in ops.step_blocks(scratch[i], *arrays):
                block_scratch, block_param, block_grad, *block_state = block
                if own[i]:
                    ops.add_scaled(block_grad, block_param, own[i], block_scratch)
                self._update(ops, block_param, block_grad, block_scratch, *block_state)

    def iteration_ends(self, time_step):
        """Called at the end of each epoch (schedules happen here)."""

    def trigger_stopping(self, msg, verbose):
        """Decide whether training stops once it no longer improves: it does."""
        if verbose:
            print(msg + " Stopping.")
        return True

    def move(self, converter):
        """Replace every state array by ``converter(array)``; the next fit
        binds the kernel of the new namespace (:meth:`bind`).

        Parameters
        ----------
        converter : callable
            Maps an array to its copy in another namespace or device.
        """
        for name in self.state_names:
            setattr(self, name, [converter(a) for a in getattr(self, name)])
        for name in self.transient:
            setattr(self, name, None)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(dict.fromkeys(self.transient))
        return state


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
    ops : ArrayOps, default=None
        See :class:`BaseOptimizer`.
    """

    hyperparameters = ("momentum", "nesterovs_momentum", "step_epochs", "step_factor")
    state_names = ("velocities",)

    def __init__(
        self, params, learning_rate_init, learning_rate, power_t, momentum, nesterov,
        step_epochs=(), step_factor=0.1, *, ops=None,
    ):
        super().__init__(params, learning_rate_init, learning_rate, power_t, ops=ops)
        self.momentum = momentum
        self.nesterov = nesterov
        if not hasattr(step_epochs, "__iter__"):
            step_epochs = (step_epochs,)
        self.step_epochs = tuple(int(e) for e in step_epochs)
        self.step_factor = float(step_factor)
        self.epochs = 0
        self.velocities = self._zeros(params, ops)

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

    def _loop_arguments(self):
        return (self.momentum, self.learning_rate), (bool(self.nesterov),)

    @staticmethod
    def step_loop(param, grad, velocity, decay, momentum, learning_rate, nesterov):
        for i in range(param.size):
            g = grad[i]
            if decay != 0:
                g = g + param[i] * decay
            scaled = g * learning_rate
            v = velocity[i] * momentum - scaled
            velocity[i] = v
            if nesterov:
                param[i] = param[i] - scaled + v * momentum
            else:
                param[i] = param[i] + v

    def _step_foreach(self, ops, params, grads, weight_decay, sources, scratch, velocities):
        if weight_decay is not None:
            ops.add_decay(grads, weight_decay, sources)
        ops.foreach_scale(velocities, self.momentum)
        ops.foreach_add_scaled(velocities, grads, -self.learning_rate)
        if self.nesterov:
            ops.foreach_add_scaled(params, grads, -self.learning_rate)
            ops.foreach_add_scaled(params, velocities, self.momentum)
        else:
            ops.foreach_add_scaled(params, velocities)


class AdamOptimizer(BaseOptimizer):
    """Adam (Kingma and Ba, 2014).

    The moments are stored as ``m`` and ``v`` themselves, the form that
    scikit-learn's ``AdamOptimizer`` and ``torch.optim.Adam`` (``exp_avg``,
    ``exp_avg_sq``) keep, on every namespace. One parameter at a time the
    step is scikit-learn's, ``lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m /
    (sqrt(v) + epsilon)``; on torch it is torch's fused Adam kernel, one pass
    over each parameter, whose ``epsilon`` is added after the bias
    correction of ``sqrt(v)`` (a difference of order ``epsilon``).

    Parameters
    ----------
    params, learning_rate_init, learning_rate, power_t
        See :class:`BaseOptimizer`.
    beta_1, beta_2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float
        Value added to the denominator for numerical stability.
    ops : ArrayOps, default=None
        See :class:`BaseOptimizer`.
    """

    hyperparameters = ("beta_1", "beta_2", "epsilon")
    state_names = ("ms", "vs")
    # The fused kernel's step counts, one tensor per parameter, follow ``t``.
    transient = (*BaseOptimizer.transient, "_steps")

    def __init__(
        self, params, learning_rate_init, learning_rate, power_t, beta_1, beta_2, epsilon,
        *, ops=None,
    ):
        super().__init__(params, learning_rate_init, learning_rate, power_t, ops=ops)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.ms = self._zeros(params, ops)
        self.vs = self._zeros(params, ops)

    def bind(self, ops, params, decay_sources=None):
        super().bind(ops, params, decay_sources)
        self._steps = None

    def update_params(self, params, grads, weight_decay=None):
        self.t += 1
        self._step = (
            self.learning_rate * (1 - self.beta_2**self.t) ** 0.5 / (1 - self.beta_1**self.t)
        )
        super().update_params(params, grads, weight_decay)

    def _update(self, ops, param, grad, scratch, m, v):
        # m <- beta_1 m + (1 - beta_1) g and v <- beta_2 v + (1 - beta_2) g^2,
        # rounded as scikit-learn rounds them.
        m *= self.beta_1
        ops.multiply(grad, 1 - self.beta_1, out=scratch)
        m += scratch
        ops.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta_2
        v *= self.beta_2
        v += scratch
        ops.sqrt(v, out=scratch)
        scratch += self.epsilon
        ops.divide(m, scratch, out=scratch)
        scratch *= self._step
        param -= scratch

    def _loop_arguments(self):
        beta_1, beta_2 = self.beta_1, self.beta_2
        return (beta_1, 1 - beta_1, beta_2, 1 - beta_2, self.epsilon, self._step), ()

    @staticmethod
    def step_loop(
        param, grad, m, v, decay, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2,
        epsilon, step,
    ):
        for i in range(param.size):
            g = grad[i]
            if decay != 0:
                g = g + param[i] * decay
            m_i = m[i] * beta_1 + g * one_minus_beta_1
            v_i = v[i] * beta_2 + g * g * one_minus_beta_2
            m[i] = m_i
            v[i] = v_i
            param[i] = param[i] - m_i / (np.sqrt(v_i) + epsilon) * step

    def _step_foreach(self, ops, params, grads, weight_decay, sources, scratch, ms, vs):
        if self._steps is None:
            self._steps = ops.step_counters(self.t, params)
        else:
            ops.foreach_add_scalar(self._steps, 1)
        own = _own_decay(ops, params, grads, weight_decay, sources)
        ops.fused_adam(
            params, grads, ms, vs, self._steps, lr=self.learning_rate, beta_1=self.beta_1,
            beta_2=self.beta_2, epsilon=self.epsilon, weight_decay=own,
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
    ops : ArrayOps, default=None
        See :class:`BaseOptimizer`.
    """

    hyperparameters = ("rho", "epsilon")
    state_names = ("squares",)
    foreach_scratch = True

    def __init__(
        self, params, learning_rate_init, learning_rate, power_t, rho, epsilon, *, ops=None,
    ):
        super().__init__(params, learning_rate_init, learning_rate, power_t, ops=ops)
        self.rho = rho
        self.epsilon = epsilon
        self.squares = self._zeros(params, ops)

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

    def _loop_arguments(self):
        return (1 - self.rho, self.epsilon, self.learning_rate), ()

    @staticmethod
    def step_loop(param, grad, square, decay, one_minus_rho, epsilon, learning_rate):
        for i in range(param.size):
            g = grad[i]
            if decay != 0:
                g = g + param[i] * decay
            s = square[i] + (g * g - square[i]) * one_minus_rho
            square[i] = s
            param[i] = param[i] - g / (np.sqrt(s) + epsilon) * learning_rate

    def _step_foreach(self, ops, params, grads, weight_decay, sources, scratch, squares):
        if weight_decay is not None:
            ops.add_decay(grads, weight_decay, sources)
        # s <- rho s + (1 - rho) g^2, the same average as _update's
        ops.foreach_scale(squares, self.rho)
        ops.foreach_add_product(squares, grads, grads, 1 - self.rho)
        ops.foreach_sqrt(squares, scratch)
        ops.foreach_add_scalar(scratch, self.epsilon)
        ops.foreach_add_quotient(params, grads, scratch, -self.learning_rate)


def _own_decay(ops, params, grads, weight_decay, sources):
    """Add to the gradients the penalties read from another array, and return
    each parameter's own penalty coefficient, which the kernel applies as it
    passes over the parameter.

    A source may be another parameter (Kolen-Pollack's feedback reads its
    forward weights): its penalties are added before any parameter moves.
    """
    if weight_decay is None:
        return [0.0] * len(params)
    ops.add_decay(
        grads, [c if s is not p else 0.0 for c, s, p in zip(weight_decay, sources, params)],
        sources,
    )
    return [c if s is p else 0.0 for c, s, p in zip(weight_decay, sources, params)]


OPTIMIZERS = {"sgd": SGDOptimizer, "adam": AdamOptimizer, "rmsprop": RMSpropOptimizer}


def make_optimizer(estimator, params, ops):
    """Build the optimizer named by ``estimator.solver`` from its parameters,
    its state in the namespace of ``ops``."""
    optimizer = OPTIMIZERS[estimator.solver]
    return optimizer(
        params,
        estimator.learning_rate_init,
        estimator.learning_rate,
        estimator.power_t,
        *(getattr(estimator, name) for name in optimizer.hyperparameters),
        ops=ops,
    )
