"""Learning rules: how each hidden layer gets its error signal ``delta``.

Notation: ``e`` is the error at the output pre-activations, ``dLoss/dA_L``,
already divided by the batch's total sample weight; ``f'(a_l)`` the derivative
of hidden layer ``l``'s activation. The output layer always receives ``e``
itself (its exact gradient); a rule only decides the hidden deltas:

- ``"bp"``:   delta_l = (delta_{l+1} @ W_{l+1}.T) * f'(a_l)   (back-propagation)
- ``"fa"``:   delta_l = (delta_{l+1} @ B_{l+1}) * f'(a_l)     (feedback alignment)
- ``"dfa"``:  delta_l = (e @ B_l) * f'(a_l)                   (direct feedback alignment)
- ``"drtp"``: delta_l = (y @ B_l) * f'(a_l)                   (direct random target projection)

For ``"drtp"``, ``y`` is the (one-hot) target weighted like ``e``; a single
binary (logistic) column is coded -1/+1, so that both classes send a signal. ``B`` are
fixed random matrices drawn once, at initialisation. A rule is one class with
``feedback_shapes`` (which matrices it needs) and ``hidden_deltas``; a new rule
is one class added to ``RULES``.
"""

import numpy as np


class BackPropagation:
    """Exact back-propagation: the reference the other rules approximate."""

    def feedback_shapes(self, units):
        """Shapes of the feedback matrices for layer widths ``units``.

        ``units`` is ``[n_features, hidden widths..., n_outputs]``; the result has
        one shape per hidden layer (empty for rules without feedback).
        """
        return []

    def make_feedback(self, units, sample):
        """Draw the rule's feedback; ``sample(shape, receiving_width)`` draws one matrix."""
        return [sample(shape, shape[1]) for shape in self.feedback_shapes(units)]

    def feedback_matrices(self, feedback, units):
        """The per-hidden-layer matrices ``B_l`` (views, no copies)."""
        return list(feedback)

    def hidden_deltas(self, net, error, target, derivative):
        """Hidden layers' deltas, first layer first.

        Parameters
        ----------
        net : Network
            The network, after a training forward pass.
        error : ndarray of shape (n_samples, n_outputs)
            ``e``, the weighted error at the output pre-activations.
        target : ndarray of shape (n_samples, n_outputs)
            The targets, weighted like ``error`` (used by target projection).
        derivative : callable
            ``derivative(l, delta)`` multiplies ``delta`` in place by ``f'(a_l)``
            (and by hidden layer ``l``'s dropout mask).
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


class FeedbackAlignment(BackPropagation):
    """Feedback alignment (Lillicrap et al., 2016): back-propagation through
    fixed random matrices ``B_{l+1}`` shaped like ``W_{l+1}.T``."""

    def feedback_shapes(self, units):
        return [(units[l + 2], units[l + 1]) for l in range(len(units) - 2)]

    def _propagate(self, net, l, upstream):
        return upstream @ net.feedback[l]


class DirectFeedbackAlignment(BackPropagation):
    """Direct feedback alignment (Nøkland, 2016): the output error reaches every
    hidden layer directly through its own fixed random matrix ``B_l``.

    All ``B_l`` are column blocks of one (n_outputs, sum of hidden widths)
    matrix, so every hidden layer's projection is one matrix product.
    """

    def feedback_shapes(self, units):
        return [(units[-1], width) for width in units[1:-1]]

    def make_feedback(self, units, sample):
        shapes = self.feedback_shapes(units)
        if not shapes:
            return None
        return np.hstack([sample(shape, shape[1]) for shape in shapes])

    def feedback_matrices(self, feedback, units):
        if feedback is None:
            return []
        bounds = np.cumsum([0, *units[1:-1]])
        return [feedback[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def _signal(self, error, target):
        return error

    def hidden_deltas(self, net, error, target, derivative):
        if net.n_layers == 1:
            return []
        projected = self._signal(error, target) @ net.feedback
        deltas = []
        start = 0
        for l, layer in enumerate(net.layers[:-1]):
            delta = projected[:, start : start + layer.n_out]
            start += layer.n_out
            derivative(l, delta)
            deltas.append(delta)
        return deltas


class DirectRandomTargetProjection(DirectFeedbackAlignment):
    """Direct random target projection (Frenkel et al., 2021): like DFA, but
    projects the targets instead of the error, so the hidden layers' updates
    need no output (they can be computed before the forward pass ends)."""

    def _signal(self, error, target):
        return target


RULES = {
    "dfa": DirectFeedbackAlignment(),
    "fa": FeedbackAlignment(),
    "bp": BackPropagation(),
    "drtp": DirectRandomTargetProjection(),
}
