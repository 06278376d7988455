"""Learning rules: how each hidden layer gets its error signal ``delta``.

Notation: row vectors; ``W_l`` maps layer ``l - 1`` to layer ``l`` (a layer's
``coef``), ``h_l`` is hidden layer ``l``'s activation, ``e`` the error at the
output pre-activations, ``dLoss/dA_L``, already weighted and divided by the
batch's total sample weight, ``w`` each sample's weight divided by that total
(``1 / n`` without weights), and ``f'(a_l)`` the derivative of hidden layer
``l``'s activation. The output layer always receives ``e`` itself (its exact
gradient); a rule only decides the hidden deltas:

- ``"bp"``:   delta_l = (delta_{l+1} @ W_{l+1}.T) * f'(a_l)   (back-propagation)
- ``"fa"``:   delta_l = (delta_{l+1} @ B_{l+1}) * f'(a_l)     (feedback alignment)
- ``"dfa"``:  delta_l = (e @ B_l) * f'(a_l)                   (direct feedback alignment)
- ``"drtp"``: delta_l = (y @ B_l) * f'(a_l)                   (direct random target projection)
- ``"sdfa"``: delta_l = ((sign(e) * w) @ B_l) * f'(a_l)       (sign-DFA)
- ``"usf"``, ``"frsf"``, ``"brsf"``, ``"kp"``: the ``"fa"`` path with a
  ``B_{l+1}`` built from, or learnt after, ``W_{l+1}`` (see each class);
- ``"dkp"``: the ``"dfa"`` path with learnt ``B_l``.

For ``"drtp"``, ``y`` is the (one-hot) target weighted like ``e``; a single
binary (logistic) column is coded -1/+1, so that both classes send a signal. ``"fa"``,
``"dfa"``, ``"drtp"`` and ``"sdfa"`` draw ``B`` once, at initialisation.

A rule is one class in ``RULES``. Its interface: ``feedback_shapes`` and
``make_feedback`` (the matrices it needs), ``feedback_matrices`` (the
per-hidden-layer ``B``), ``hidden_deltas``, ``weight_alignment``, and, for
rules whose feedback changes during training, ``learned_feedback`` (arrays the
optimizer moves, like the weights), ``feedback_gradients`` (their gradients)
and ``update_feedback`` (called after every update of the weights).
"""

import numpy as np

from ._array_ops import array_ops


def angle(a, b):
    """Angle in degrees between two arrays seen as vectors (NaN if one is 0),
    accumulated in float64 where their namespace has it."""
    ops = array_ops(a)
    dot = ops.vdot(a, b)
    norms = np.sqrt(ops.vdot(a, a) * ops.vdot(b, b))
    if norms == 0:
        return np.nan
    return float(np.degrees(np.arccos(np.clip(dot / norms, -1.0, 1.0))))


class BackPropagation:
    """Exact back-propagation: the reference the other rules approximate."""

    # Whether the rule builds its feedback from the forward weights ``coef``
    # of dense layers (layers with fixed random matrices have none).
    needs_dense_weights = False
    # Whether the feedback depends on the feedback stream's seed (networks
    # that differ only in that seed then learn differently).
    random_feedback = False

    def feedback_shapes(self, units):
        """Shapes of the feedback matrices for layer widths ``units``.

        ``units`` is ``[n_features, hidden widths..., n_outputs]``; the result has
        one shape per hidden layer (empty for rules without feedback).
        """
        return []

    def make_feedback(self, net, sample):
        """Build the rule's feedback for ``net``, whose weights are initialised.

        ``sample(shape, receiving_width)`` draws one random matrix.
        """
        return [sample(shape, shape[1]) for shape in self.feedback_shapes(net.units)]

    def feedback_matrices(self, feedback, units):
        """The per-hidden-layer matrices ``B_l`` (views, no copies)."""
        return list(feedback)

    def learned_feedback(self, feedback):
        """Feedback arrays moved by the optimizer, after the weights (none)."""
        return []

    def hidden_deltas(self, net, error, Y, row_weight, derivative, buffer):
        """Hidden layers' deltas, first layer first.

        Parameters
        ----------
        net : Network
            The network, after a training forward pass.
        error : ndarray of shape (n_samples, n_outputs)
            ``e``, the weighted error at the output pre-activations.
        Y : ndarray of shape (n_samples, n_outputs)
            The batch's targets (one-hot for classifiers), unweighted.
        row_weight : float or ndarray of shape (n_samples, 1)
            ``w``: each sample's weight over the batch's total weight.
        derivative : callable
            ``derivative(l, delta)`` multiplies ``delta`` in place by ``f'(a_l)``
            (and by hidden layer ``l``'s dropout mask).
        buffer : callable
            ``buffer(key, width)``: an (n_samples, width) array to write into,
            the same one at every batch for the same ``key``.
        """
        deltas = [None] * (net.n_layers - 1)
        upstream = error
        for l in range(net.n_layers - 2, -1, -1):
            upstream = self._propagate(net, l, upstream)
            derivative(l, upstream)
            deltas[l] = upstream
        return deltas

    def _propagate(self, net, l, upstream):
        return net.layers[l + 1].backward(upstream)

    def feedback_gradients(self, net, inputs, error, layer_grads, grads, l2):
        """Write the gradients of ``learned_feedback`` into ``grads``.

        ``inputs[l]`` is what layer ``l`` saw (so ``inputs[l + 1]`` is hidden
        layer ``l``'s activation), ``layer_grads[l]`` layer ``l``'s parameter
        gradients without the L2 penalty, whose gradient is ``l2`` times the
        weights (the optimizer adds it to theirs).
        """

    def update_feedback(self, net, decay):
        """Change the feedback after an update of the weights (no-op here).

        ``decay`` is the estimator's ``feedback_decay``.
        """

    def forward_paths(self, net):
        """The forward maps each hidden layer's feedback stands in for,
        shaped like that feedback: ``W_{l+1}.T`` for the layer-by-layer rules."""
        return [net.layers[l + 1].weight_matrix().T for l in range(net.n_layers - 1)]

    def weight_alignment(self, net):
        """Angle in degrees, per hidden layer, between its feedback and the
        forward path it stands in for (0 for back-propagation, whose feedback
        is that path)."""
        return np.zeros(net.n_layers - 1)


class FeedbackAlignment(BackPropagation):
    """Feedback alignment (Lillicrap et al., 2016): back-propagation through
    fixed random matrices ``B_{l+1}`` shaped like ``W_{l+1}.T``."""

    random_feedback = True

    def feedback_shapes(self, units):
        return [(units[l + 2], units[l + 1]) for l in range(len(units) - 2)]

    def _propagate(self, net, l, upstream):
        return upstream @ self.feedback_matrices(net.feedback, net.units)[l]

    def weight_alignment(self, net):
        feedback = self.feedback_matrices(net.feedback, net.units)
        return np.array([angle(B, P) for B, P in zip(feedback, self.forward_paths(net))])


class _SignSymmetry(FeedbackAlignment):
    """The feedback alignment path with ``B_{l+1} = magnitude * sign(W_{l+1}.T)``:
    the feedback carries the forward weights' signs, not their values (Liao,
    Leibo and Poggio, 2016). Subclasses choose the magnitude; ``B`` follows
    the weights' signs after every update."""

    needs_dense_weights = True

    def make_feedback(self, net, sample):
        # Numpy, like every rule's drawn feedback (the estimator moves it).
        dtype = np.dtype(net._sampler[2])
        feedback = [np.empty(shape, dtype) for shape in self.feedback_shapes(net.units)]
        magnitudes = self._magnitudes(net, feedback, sample)
        for l, (B, magnitude) in enumerate(zip(feedback, magnitudes)):
            B[...] = np.sign(net.ops.to_numpy(net.layers[l + 1].coef).T) * magnitude
        return feedback

    def _set_signs(self, net, feedback, magnitudes):
        ops = net.ops
        for l, (B, magnitude) in enumerate(zip(feedback, magnitudes)):
            ops.copy_into(B, ops.xp.sign(net.layers[l + 1].coef.T))
            B *= magnitude if isinstance(magnitude, float) else ops.asarray(magnitude)

    def update_feedback(self, net, decay):
        self._set_signs(net, net.feedback, self._magnitudes(net, net.feedback, net.sample_feedback))


class UniformSignSymmetry(_SignSymmetry):
    """Uniform sign-concordant feedback, uSF (Liao, Leibo and Poggio, 2016):
    ``B_{l+1} = sign(W_{l+1}.T) * s_{l+1}``, recomputed after every update.

    ``s`` is the standard deviation of Glorot's initialisation of
    ``W_{l+1}``, ``sqrt(2 / (fan_in + fan_out))``, as in biotorch's
    ``layers/usf`` (Sanfiz and Akrout, 2021), whatever ``weight_init``.
    """

    random_feedback = False

    def _magnitudes(self, net, feedback, sample):
        return [float(np.sqrt(2.0 / (B.shape[0] + B.shape[1]))) for B in feedback]


class FixedRandomSignSymmetry(_SignSymmetry):
    """Fixed random-magnitude sign-concordant feedback, frSF (Liao, Leibo and
    Poggio, 2016; biotorch ``layers/frsf``): ``B_{l+1} = abs(M_{l+1}) *
    sign(W_{l+1}.T)``, ``M`` drawn once from the feedback sampler, the signs
    recomputed after every update. The network keeps ``(B, abs(M))``."""

    def make_feedback(self, net, sample):
        magnitudes = [np.abs(sample(shape, shape[1])) for shape in self.feedback_shapes(net.units)]
        feedback = [np.sign(net.ops.to_numpy(net.layers[l + 1].coef).T) * M
                    for l, M in enumerate(magnitudes)]
        return feedback, magnitudes

    def feedback_matrices(self, feedback, units):
        return list(feedback[0])

    def update_feedback(self, net, decay):
        self._set_signs(net, *net.feedback)


class BatchRandomSignSymmetry(_SignSymmetry):
    """Batchwise random-magnitude sign-concordant feedback, brSF (Liao, Leibo
    and Poggio, 2016; biotorch ``layers/brsf``): ``B_{l+1} = abs(M_{l+1}) *
    sign(W_{l+1}.T)`` with ``M`` redrawn from the feedback stream after every
    update, so each batch sees a new one."""

    def _magnitudes(self, net, feedback, sample):
        return [np.abs(sample(B.shape, B.shape[1])) for B in feedback]


class KolenPollack(FeedbackAlignment):
    """Kolen-Pollack (Kolen and Pollack, 1994; Akrout et al., 2019): the
    feedback alignment path with a learnt ``B_{l+1}``.

    ``B_{l+1}`` starts random and receives the transpose of every update of
    ``W_{l+1}``: its gradient is ``W_{l+1}``'s (L2 penalty included)
    transposed, and the estimator's optimizer moves it with the weights, so
    for every solver its update is the transpose of ``W_{l+1}``'s. After each
    update both are multiplied by ``1 - feedback_decay``; hence
    ``W_{l+1} - B_{l+1}.T`` shrinks by that factor at every step and ``B``
    converges to ``W.T`` (Akrout et al.'s ``fcnn/FCNN_KP.py`` applies the
    same SGD step and decay to both).
    """

    needs_dense_weights = True

    def learned_feedback(self, feedback):
        return list(feedback)

    def feedback_gradients(self, net, inputs, error, layer_grads, grads, l2):
        for l, grad in enumerate(grads):
            net.ops.copy_into(grad, layer_grads[l + 1][0].T)
            if l2:
                net.ops.add_scaled(grad, net.layers[l + 1].coef.T, l2)

    def update_feedback(self, net, decay):
        if decay:
            for l, B in enumerate(net.feedback):
                net.layers[l + 1].coef *= 1.0 - decay
                B *= 1.0 - decay


class DirectFeedbackAlignment(BackPropagation):
    """Direct feedback alignment (Nøkland, 2016): the output error reaches every
    hidden layer directly through its own fixed random matrix ``B_l``.

    All ``B_l`` are column blocks of one (n_outputs, sum of hidden widths)
    matrix, so every hidden layer's projection is one matrix product.
    """

    random_feedback = True

    def feedback_shapes(self, units):
        return [(units[-1], width) for width in units[1:-1]]

    def make_feedback(self, net, sample):
        shapes = self.feedback_shapes(net.units)
        if not shapes:
            return None
        return np.hstack([sample(shape, shape[1]) for shape in shapes])

    def feedback_matrices(self, feedback, units):
        if feedback is None:
            return []
        bounds = np.cumsum([0, *units[1:-1]])
        return [feedback[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def _signal(self, net, error, Y, row_weight):
        """What the feedback projects: the output error."""
        return error

    def hidden_deltas(self, net, error, Y, row_weight, derivative, buffer):
        if net.n_layers == 1:
            return []
        signal = self._signal(net, error, Y, row_weight)
        projected = net.ops.matmul(
            signal, net.feedback, out=buffer("projection", net.feedback.shape[1])
        )
        deltas = []
        start = 0
        for l, layer in enumerate(net.layers[:-1]):
            delta = projected[:, start : start + layer.n_out]
            start += layer.n_out
            derivative(l, delta)
            deltas.append(delta)
        return deltas

    def forward_paths(self, net):
        """``(W_{l+1} @ ... @ W_L).T``: the whole path from hidden layer ``l``
        to the output, which ``B_l`` stands in for."""
        paths = [None] * (net.n_layers - 1)
        path = net.layers[-1].weight_matrix()
        for l in range(net.n_layers - 2, -1, -1):
            paths[l] = path.T
            if l:
                path = net.layers[l].weight_matrix() @ path
        return paths

    def weight_alignment(self, net):
        feedback = self.feedback_matrices(net.feedback, net.units)
        return np.array([angle(B, P) for B, P in zip(feedback, self.forward_paths(net))])


class DirectRandomTargetProjection(DirectFeedbackAlignment):
    """Direct random target projection (Frenkel et al., 2021): like DFA, but
    projects the targets instead of the error, so the hidden layers' updates
    need no output (they can be computed before the forward pass ends)."""

    def _signal(self, net, error, Y, row_weight):
        # A single binary column is coded -1/+1, the difference of its two
        # one-hot columns. Coded 0/1, the negative class would send nothing,
        # and every update would push all samples the same way, never apart.
        if Y.shape[1] == 1 and net.output == "logistic":
            Y = 2 * Y - 1
        return Y * row_weight


class SignDirectFeedbackAlignment(DirectFeedbackAlignment):
    """Sign-DFA (Frenkel et al., 2021; the ``"sDFA"`` mode of their DRTP code,
    ``function.py``): like DFA, but projects the sign of each sample's error,
    weighted like the error, ``sign(e) * w``; only the output layer sees the
    error's magnitude. With softmax or logistic outputs and 0/1 targets,
    ``sign(P - Y) = 1 - 2 Y``: like DRTP's, the signal depends on the target
    alone, and it never shrinks as the network learns."""

    def _signal(self, net, error, Y, row_weight):
        signal = net.ops.xp.sign(error)
        signal *= row_weight
        return signal


class DirectKolenPollack(DirectFeedbackAlignment):
    """Direct Kolen-Pollack (Webster, Choi and Ahn, 2020; webstah/dkp-gist,
    ``DFATrainingHook``): the DFA path with a learnt ``B_l``.

    ``B_l`` learns as if it were a direct forward connection from hidden
    layer ``l`` to the output, of weights ``B_l.T``: its gradient is
    ``e.T @ h_l``, the estimator's optimizer moves it with the weights
    (plain SGD gives ``dB_l = -lr * e.T @ h_l``), and after each update it is
    multiplied by ``1 - feedback_decay``.
    """

    def learned_feedback(self, feedback):
        return [feedback]

    def feedback_gradients(self, net, inputs, error, layer_grads, grads, l2):
        (grad,) = grads
        start = 0
        for h in inputs[1:]:
            net.ops.matmul(error.T, h, grad[:, start : start + h.shape[1]])
            start += h.shape[1]

    def update_feedback(self, net, decay):
        if decay and net.feedback is not None:
            net.feedback *= 1.0 - decay


RULES = {
    "dfa": DirectFeedbackAlignment(),
    "fa": FeedbackAlignment(),
    "bp": BackPropagation(),
    "drtp": DirectRandomTargetProjection(),
    "sdfa": SignDirectFeedbackAlignment(),
    "usf": UniformSignSymmetry(),
    "frsf": FixedRandomSignSymmetry(),
    "brsf": BatchRandomSignSymmetry(),
    "kp": KolenPollack(),
    "dkp": DirectKolenPollack(),
}
