"""The layer-by-layer rules: a signal passed back through every layer.

Hidden layer ``l`` gets ``delta_l = (delta_{l+1} @ S_{l+1}) * f'(a_l)``,
where ``S_{l+1}`` stands in for the weights ``W_{l+1}.T`` of the layer
above (for a convolution, a kernel shaped like its own; a pooling passes the
signal to each window's maximum and has nothing to stand in for):

- ``"bp"``: ``S = W.T`` itself (back-propagation);
- ``"fa"``: a fixed random ``B`` (feedback alignment);
- ``"usf"``, ``"frsf"``, ``"brsf"``: ``B`` with ``W``'s signs, recomputed
  after every update (sign symmetry);
- ``"kp"``: a ``B`` learnt from ``W``'s updates (Kolen-Pollack).

:class:`LayerByLayerRule` is the family's public base: a variant says only
how its stand-ins differ (:meth:`LayerByLayerRule.init_feedback`,
:meth:`~LearningRule.draw_feedback`).
"""

import numpy as np

from ._rule_api import _CONV_KINDS, LearningRule, RuleState, angle


def _with_feedback(layers):
    """The layers above the first that a feedback array stands in for: those
    with weights (pooling has none, and passes signals back unchanged)."""
    return [layer for layer in layers[1:] if layer.feedback_shape is not None]


class LayerByLayerRule(LearningRule):
    """Base of the layer-by-layer rules: the output error passes back through
    every layer, each with a stand-in for its weights.

    ``delta_l = layers[l + 1].backward(delta_{l+1}, S_{l+1}) * f'(a_l)``:
    each layer above the first passes the signal back through ``S``, its
    stand-in (shaped as ``layer.feedback_shape``: a dense layer's ``W.T``, a
    convolution's kernel), or through its own weights where ``S`` is None.
    The engine asks for a stand-in for every layer that has weights, and for
    no other (a pooling has none); the state, the deltas, ``feedback_`` and
    ``weight_alignment_`` follow, on every network.

    A variant overrides one public hook:

    - :meth:`init_feedback`: the stand-in of one layer, made once (the
      default is None, the layer's own weights: back-propagation;
      :class:`FeedbackAlignment` draws it through :meth:`draw_feedback`);
    - :meth:`~LearningRule.draw_feedback`: how each random array is drawn;
    - ``learned_feedback = True`` (a class attribute): the optimizer moves the
      stand-ins with the weights, from what :meth:`feedback_gradients` writes
      (Kolen-Pollack); every layer with weights must then get one;

    and :meth:`update_state` may change the stand-ins after each update (the
    sign rules do).

    Attributes
    ----------
    learned_feedback : bool
        Whether the stand-ins are learnt (kept in ``state.learned``, in the
        order of the layers) or fixed (``state.fixed``, one entry per layer
        of ``layers[1:]``, None for a layer without one).

    Examples
    --------
    Feedback alignment with its random feedback drawn ``scale`` times larger,
    in a dense and in a convolutional network (with ``solver="sgd"``: Adam
    divides every step by the gradient's own size, so a constant scale of the
    feedback changes nothing under ``"adam"``):

    >>> from sklearn.datasets import load_digits
    >>> from skdfa import ConvDFAClassifier, DFAClassifier
    >>> from skdfa.rules import FeedbackAlignment
    >>> class ScaledFA(FeedbackAlignment):
    ...     "FA whose feedback is drawn `scale` times larger."
    ...     def __init__(self, scale=1.0):
    ...         self.scale = scale
    ...     def draw_feedback(self, sample, shape, receiving_width):
    ...         return self.scale * sample(shape, receiving_width)
    >>> X, y = load_digits(return_X_y=True)
    >>> dense = DFAClassifier((32, 32), rule=ScaledFA(3.0), solver="sgd",
    ...                       learning_rate_init=0.05, max_iter=30, random_state=0)
    >>> bool(dense.fit(X / 16, y).score(X / 16, y) > 0.95)
    True
    >>> conv = ConvDFAClassifier(conv_layers=((4, 3),), pool_size=(2,), hidden_layer_sizes=(16,),
    ...                          rule=ScaledFA(3.0), max_iter=2, random_state=0).fit(X / 16, y)
    >>> [B.shape for B in conv.feedback_]
    [(16, 36), (10, 16)]
    """

    layer_kinds = frozenset({"dense", "rd"}) | _CONV_KINDS
    learned_feedback = False

    def checked_layers(self, layers):
        # The layers it passes signals back through, with their stand-ins;
        # the first layer only turns its delta into gradients.
        return layers[1:]

    def init_feedback(self, layer, sample):
        """The stand-in for one layer's weights, at initialisation.

        Parameters
        ----------
        layer : layer
            A layer above the first that has weights (its ``feedback_shape``
            is not None).
        sample : FeedbackSampler
            The feedback stream (draw through :meth:`draw_feedback`).

        Returns
        -------
        feedback : ndarray of shape ``layer.feedback_shape`` or None
            A numpy array; None: the layer's own weights (back-propagation).
        """
        return None

    def init_state(self, layers, sample):
        feedback = [
            None if layer.feedback_shape is None else self.init_feedback(layer, sample)
            for layer in layers[1:]
        ]
        if self.learned_feedback:
            # Only arrays: the optimizer moves every one.
            return RuleState(learned=[B for B in feedback if B is not None])
        if all(B is None for B in feedback):
            return RuleState()
        return RuleState(fixed=feedback)

    def layer_feedback(self, state, layers):
        """The stand-in of each layer of ``layers[1:]``.

        Parameters
        ----------
        state : RuleState
            The rule's state.
        layers : list of layers
            The network's layers.

        Returns
        -------
        feedback : list of array or None
            One per layer above the first: its stand-in, or None (its own
            weights, or nothing for a pooling).
        """
        if self.learned_feedback:
            learned = iter(state.learned)
            return [
                None if layer.feedback_shape is None else next(learned) for layer in layers[1:]
            ]
        return state.fixed or [None] * (len(layers) - 1)

    def hidden_deltas(self, ctx, state):
        layers = ctx.layers
        feedback = self.layer_feedback(state, layers)
        deltas = [None] * (len(layers) - 1)
        upstream = ctx.error
        for l in range(len(layers) - 2, -1, -1):
            upstream = layers[l + 1].backward(upstream, feedback[l])
            deltas[l] = ctx.derivative(l, upstream)
        return deltas

    def weight_alignment(self, state, layers):
        """Angles between each stand-in ``S_{l+1}`` and ``W_{l+1}.T`` (a
        convolution's kernel): 0 where a layer passes the signal through its
        own weights, NaN for a hidden layer under a pooling (no weights).

        Parameters
        ----------
        state : RuleState
            The rule's state.
        layers : list of layers
            The network's layers.

        Returns
        -------
        degrees : ndarray of shape (n_hidden_layers,)
        """
        degrees = []
        for B, layer in zip(self.layer_feedback(state, layers), layers[1:]):
            if layer.feedback_shape is None:
                degrees.append(np.nan)
            elif B is None:
                degrees.append(0.0)
            else:
                degrees.append(angle(B, layer.backward_weights(), layer.ops))
        return np.array(degrees)


class BackPropagation(LayerByLayerRule):
    """Exact back-propagation: the reference the other rules approximate.

    Attributes
    ----------
    name, label : str
        ``"bp"`` (``rule="bp"``), ``"BP"``.
    random_feedback : bool
        False.

    Examples
    --------
    >>> from skdfa.rules import BackPropagation
    >>> rule = BackPropagation()
    >>> rule.name, rule.label, rule.random_feedback
    ('bp', 'BP', False)
    """

    name = "bp"
    label = "BP"
    color = "#1f77b4"  # blue
    exact_gradient = True

    def weight_alignment(self, state, layers):
        """Zeros: back-propagation's feedback is the forward path itself.

        Parameters
        ----------
        state : RuleState
            The rule's (empty) state.
        layers : list of layers
            The network's layers.

        Returns
        -------
        degrees : ndarray of shape (n_hidden_layers,)
            Zeros.
        """
        return np.zeros(len(layers) - 1)


class FeedbackAlignment(LayerByLayerRule):
    """Feedback alignment (Lillicrap et al., 2016): back-propagation through
    fixed random matrices ``B_{l+1}`` shaped like ``W_{l+1}.T``.

    Attributes
    ----------
    name, label : str
        ``"fa"`` (``rule="fa"``), ``"FA"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import FeedbackAlignment
    >>> rule = FeedbackAlignment()
    >>> rule.name, rule.label, rule.random_feedback
    ('fa', 'FA', True)
    """

    name = "fa"
    label = "FA"
    color = "#2ca02c"  # green
    random_feedback = True

    def init_feedback(self, layer, sample):
        """A random array shaped like the layer's weights (transposed).

        Parameters
        ----------
        layer : layer
            A layer with weights.
        sample : FeedbackSampler
            The feedback stream.

        Returns
        -------
        feedback : ndarray of shape ``layer.feedback_shape``
            ``draw_feedback(sample, layer.feedback_shape, layer.feedback_width)``.
        """
        return self.draw_feedback(sample, layer.feedback_shape, layer.feedback_width)


class _SignSymmetry(FeedbackAlignment):
    """The feedback alignment path with ``B_{l+1} = magnitude * sign(W_{l+1}.T)``:
    the feedback carries the forward weights' signs, not their values (Liao,
    Leibo and Poggio, 2016). Subclasses choose the magnitude
    (:meth:`magnitudes`); ``B`` follows the weights' signs after every update."""

    random_feedback = True
    layer_kinds = frozenset({"dense"}) | _CONV_KINDS
    layer_requirement = (
        "builds its feedback from dense forward weights (coef) or convolution kernels"
    )

    def magnitudes(self, layers, sample):
        """Each stand-in's magnitude, at initialisation and after every update.

        Parameters
        ----------
        layers : list of layers
            The network's layers.
        sample : FeedbackSampler
            The feedback stream.

        Returns
        -------
        magnitudes : list of float, ndarray or None
            One per layer of ``layers[1:]`` (None for a layer without weights).
        """
        raise NotImplementedError

    def init_state(self, layers, sample):
        feedback = [
            None if layer.feedback_shape is None else np.empty(layer.feedback_shape, sample.dtype)
            for layer in layers[1:]
        ]
        magnitudes = self.magnitudes(layers, sample)
        for B, layer, magnitude in zip(feedback, layers[1:], magnitudes):
            if B is None:
                continue
            signs = np.sign(layer.ops.to_numpy(layer.as_feedback(layer.weights)))
            B[...] = signs * magnitude
        return RuleState(fixed=feedback)

    def _set_signs(self, feedback, layers, magnitudes):
        for B, layer, magnitude in zip(feedback, layers[1:], magnitudes):
            if B is None:
                continue
            ops = layer.ops
            ops.copy_into(B, ops.xp.sign(layer.as_feedback(layer.weights)))
            B *= magnitude if isinstance(magnitude, float) else ops.asarray(magnitude)

    def update_state(self, state, layers, sample, decay):
        self._set_signs(state.fixed, layers, self.magnitudes(layers, sample))


class UniformSignSymmetry(_SignSymmetry):
    """Uniform sign-concordant feedback, uSF (Liao, Leibo and Poggio, 2016):
    ``B_{l+1} = sign(W_{l+1}.T) * s_{l+1}``, recomputed after every update.

    ``s`` is the standard deviation of Glorot's initialisation of
    ``W_{l+1}``, ``sqrt(2 / (fan_in + fan_out))``, as in biotorch's
    ``layers/usf`` (Sanfiz and Akrout, 2021), whatever ``weight_init``.

    Attributes
    ----------
    name, label : str
        ``"usf"`` (``rule="usf"``), ``"uSF"``.
    random_feedback : bool
        False.

    Examples
    --------
    >>> from skdfa.rules import UniformSignSymmetry
    >>> rule = UniformSignSymmetry()
    >>> rule.name, rule.label, rule.random_feedback
    ('usf', 'uSF', False)
    """

    name = "usf"
    label = "uSF"
    color = "#8c564b"  # brown
    random_feedback = False

    def magnitudes(self, layers, sample):
        return [
            None if layer.feedback_shape is None else float(np.sqrt(2.0 / sum(layer.fans())))
            for layer in layers[1:]
        ]


class FixedRandomSignSymmetry(_SignSymmetry):
    """Fixed random-magnitude sign-concordant feedback, frSF (Liao, Leibo and
    Poggio, 2016; biotorch ``layers/frsf``): ``B_{l+1} = abs(M_{l+1}) *
    sign(W_{l+1}.T)``, ``M`` drawn once from the feedback sampler, the signs
    recomputed after every update. The state keeps ``abs(M)`` in
    ``extras["magnitudes"]``.

    Attributes
    ----------
    name, label : str
        ``"frsf"`` (``rule="frsf"``), ``"frSF"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import FixedRandomSignSymmetry
    >>> rule = FixedRandomSignSymmetry()
    >>> rule.name, rule.label, rule.random_feedback
    ('frsf', 'frSF', True)
    """

    name = "frsf"
    label = "frSF"
    color = "#e377c2"  # pink

    def init_state(self, layers, sample):
        drawn = [None if layer.feedback_shape is None else self.init_feedback(layer, sample)
                 for layer in layers[1:]]
        magnitudes = [None if M is None else np.abs(M) for M in drawn]
        feedback = [
            None if M is None
            else np.sign(layer.ops.to_numpy(layer.as_feedback(layer.weights))) * M
            for layer, M in zip(layers[1:], magnitudes)
        ]
        return RuleState(fixed=feedback, extras={"magnitudes": magnitudes})

    def update_state(self, state, layers, sample, decay):
        self._set_signs(state.fixed, layers, state.extras["magnitudes"])


class BatchRandomSignSymmetry(_SignSymmetry):
    """Batchwise random-magnitude sign-concordant feedback, brSF (Liao, Leibo
    and Poggio, 2016; biotorch ``layers/brsf``): ``B_{l+1} = abs(M_{l+1}) *
    sign(W_{l+1}.T)`` with ``M`` redrawn from the feedback stream after every
    update, so each batch sees a new one.

    Attributes
    ----------
    name, label : str
        ``"brsf"`` (``rule="brsf"``), ``"brSF"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import BatchRandomSignSymmetry
    >>> rule = BatchRandomSignSymmetry()
    >>> rule.name, rule.label, rule.random_feedback
    ('brsf', 'brSF', True)
    """

    name = "brsf"
    label = "brSF"
    color = "#17becf"  # cyan

    def magnitudes(self, layers, sample):
        drawn = [None if layer.feedback_shape is None else self.init_feedback(layer, sample)
                 for layer in layers[1:]]
        return [None if M is None else np.abs(M) for M in drawn]


class KolenPollack(FeedbackAlignment):
    """Kolen-Pollack (Kolen and Pollack, 1994; Akrout et al., 2019): the
    feedback alignment path with a learnt ``B_{l+1}``.

    ``B_{l+1}`` starts random and receives the transpose of every update of
    ``W_{l+1}``: its gradient is ``W_{l+1}``'s (L2 penalty included, which
    the optimizer adds: :meth:`decay_sources`) transposed, and the estimator's optimizer moves it with the weights, so
    for every solver its update is the transpose of ``W_{l+1}``'s. After each
    update both are multiplied by ``1 - feedback_decay``; hence
    ``W_{l+1} - B_{l+1}.T`` shrinks by that factor at every step and ``B``
    converges to ``W.T`` (Akrout et al.'s ``fcnn/FCNN_KP.py`` applies the
    same SGD step and decay to both).

    Attributes
    ----------
    name, label : str
        ``"kp"`` (``rule="kp"``), ``"KP"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import KolenPollack
    >>> rule = KolenPollack()
    >>> rule.name, rule.label, rule.random_feedback
    ('kp', 'KP', True)
    """

    name = "kp"
    label = "KP"
    color = "#bcbd22"  # olive
    random_feedback = True
    learned_feedback = True
    layer_kinds = frozenset({"dense"}) | _CONV_KINDS
    layer_requirement = (
        "builds its feedback from dense forward weights (coef) or convolution kernels"
    )

    def feedback_gradients(self, ctx, state, layer_grads, grads):
        ops = ctx.ops
        weighted = [l for l, layer in enumerate(ctx.layers) if l and layer.feedback_shape]
        for l, grad in zip(weighted, grads):
            layer = ctx.layers[l]
            ops.copy_into(grad, layer.as_feedback(layer_grads[l][layer.weights_index]))

    def decay_sources(self, state, layers):
        # W's penalty, transposed, so that B's whole gradient is W's.
        return [layer.as_feedback(layer.weights) for layer in _with_feedback(layers)]

    def update_state(self, state, layers, sample, decay):
        if decay:
            for B, layer in zip(state.learned, _with_feedback(layers)):
                weights = layer.weights  # a property: scaled in place, not rebound
                weights *= 1.0 - decay
                B *= 1.0 - decay

