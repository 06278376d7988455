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

Below a convolution, ``"dfa"``, ``"drtp"`` and ``"sdfa"`` take
``conv_feedback="kernel"`` for biotorch's form, which sends the projection
into the input of the next layer with parameters, through pooling (see
:class:`DirectFeedbackAlignment`).

For ``"drtp"``, ``y`` is the (one-hot) target weighted like ``e``; a single
binary (logistic) column is coded -1/+1, so that both classes send a signal. ``"fa"``,
``"dfa"``, ``"drtp"`` and ``"sdfa"`` draw ``B`` once, at initialisation.

A rule is one subclass of :class:`LearningRule` (the interface is documented
there and in the user guide, "Write your own learning rule"). A rule object
holds only its constructor's parameters; everything a fit changes lives in
the :class:`RuleState` that :meth:`LearningRule.init_state` creates, which the
network keeps. The rule reads the network only through a :class:`DeltaContext`
and the layers' public operations (``backward``, ``as_output``,
``feedback_shape``, ``as_feedback``, ``weights``), so a new layer type that
provides those operations trains under every rule that lists its ``kind``.
Built-in rules are every subclass defined in this module with a ``name``.
"""

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ._array_ops import array_ops
from ._feedback import FEEDBACK_SAMPLERS, feedback_scale


def angle(a, b, ops=None):
    """Angle in degrees between two arrays seen as vectors.

    Accumulated in float64 where their namespace has it; the alignment
    diagnostics (``alignment_``, ``weight_alignment_``) use it.

    Parameters
    ----------
    a, b : array
        Two arrays of the same shape and namespace.
    ops : ArrayOps, default=None
        Their namespace's array operations (the network's ``ops``); None:
        looked up from ``a``.

    Returns
    -------
    degrees : float
        In [0, 180]; NaN when either array is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from skdfa.rules import angle
    >>> round(angle(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])), 9)
    45.0
    """
    ops = array_ops(a) if ops is None else ops
    dot = ops.vdot(a, b)
    norms = np.sqrt(ops.vdot(a, a) * ops.vdot(b, b))
    if norms == 0:
        return np.nan
    return float(np.degrees(np.arccos(np.clip(dot / norms, -1.0, 1.0))))


@dataclass
class RuleState:
    """Everything a learning rule keeps during a fit, in one object.

    :meth:`LearningRule.init_state` creates it; the network holds it, and
    snapshots, pickles and moves between array namespaces copy it like the
    weights.

    Parameters
    ----------
    fixed : list of array or None, default=[]
        See Attributes.
    learned : list of array, default=[]
        See Attributes.
    extras : dict of str to list of array, default={}
        See Attributes.

    Attributes
    ----------
    fixed : list of array or None
        Arrays the rule reads and may rewrite itself (drawn or sign feedback),
        which the optimizer never moves.
    learned : list of array
        Arrays the optimizer moves after the weights, from the gradients that
        :meth:`LearningRule.feedback_gradients` writes (Kolen-Pollack).
    extras : dict of str to list of array
        Anything else the rule needs (frSF's fixed magnitudes).

    Examples
    --------
    >>> import numpy as np
    >>> from skdfa.rules import RuleState
    >>> state = RuleState(fixed=[np.ones((10, 4))], extras={"masks": [np.ones((10, 4))]})
    >>> len(state.arrays())
    2
    """

    fixed: list = field(default_factory=list)
    learned: list = field(default_factory=list)
    extras: dict = field(default_factory=dict)

    def arrays(self):
        """Every array of the state, in a fixed order.

        Returns
        -------
        arrays : list of array
            ``fixed``, then ``learned``, then the ``extras``' lists (None
            entries skipped).
        """
        parts = [self.fixed, self.learned, *self.extras.values()]
        return [a for part in parts for a in part if a is not None]


class FeedbackSampler:
    """Draws the fixed random feedback matrices, from their own stream.

    Parameters
    ----------
    rng : numpy.random.RandomState
        The feedback stream (kept: ``"brsf"`` draws from it during training).
    distribution : {"uniform", "gaussian"}
        A key of ``FEEDBACK_SAMPLERS``.
    scale : float, "auto" or "glorot"
        The entries' size; ``"auto"`` is ``1 / sqrt(receiving_width)``,
        ``"glorot"`` Glorot's variance of the drawn array's shape.
    dtype : numpy dtype
        Of the drawn matrices.

    Attributes
    ----------
    rng : numpy.random.RandomState
        The feedback stream.
    dtype : str
        The drawn matrices' numpy dtype, as a string (``"<f8"``).

    Examples
    --------
    >>> import numpy as np
    >>> from skdfa.rules import FeedbackSampler
    >>> sample = FeedbackSampler(np.random.RandomState(0), "uniform", "auto", np.float32)
    >>> B = sample((10, 100), receiving_width=100)
    >>> B.dtype, bool(abs(B).max() <= 0.1)
    (dtype('float32'), True)
    """

    def __init__(self, rng, distribution, scale, dtype):
        self.rng = rng
        self.distribution = distribution
        self.scale = scale
        # A string: skops loads it without trusting numpy.dtype.
        self.dtype = np.dtype(dtype).str

    def __call__(self, shape, receiving_width):
        """A numpy matrix of ``shape``, scaled for a layer of ``receiving_width`` units."""
        return FEEDBACK_SAMPLERS[self.distribution](
            self.rng,
            shape,
            feedback_scale(self.scale, receiving_width, shape, self.distribution),
            self.dtype,
        )


class DeltaContext:
    """What a rule may read while it computes one batch's hidden deltas.

    Built once per fit by the engine and refilled at every batch (nothing is
    allocated per batch). Hidden layer ``l`` is ``layers[l]``; the output
    layer is ``layers[-1]``.

    Parameters
    ----------
    ops : ArrayOps
        See Attributes.
    layers : list of layers
        See Attributes.
    output_activation : str
        See Attributes.
    hidden : list of arrays
        The hidden activations' batch buffers (read by :meth:`activation`).
    derivative : callable
        ``derivative(l, delta)``: the engine's in-place derivative.
    buffer : callable
        ``buffer(key, width, n_samples)``: the engine's buffer store.

    Attributes
    ----------
    ops : ArrayOps
        The array operations of the network's namespace and device.
    layers : list of layers
        The network's layers, input to output.
    output_activation : {"softmax", "logistic", "identity"}
    error : array of shape (n_samples, n_outputs)
        ``e = dLoss/dA_L``, weighted and divided by the batch's total weight.
    targets : array of shape (n_samples, n_outputs)
        The batch's encoded targets (one-hot for classifiers), unweighted.
    row_weight : float or array of shape (n_samples, 1)
        ``w``: each sample's weight over the batch's total weight.
    inputs : list of arrays
        ``inputs[l]`` is what layer ``l`` saw, after dropout (``inputs[0]`` is
        the batch ``X``, maybe sparse; ``inputs[l + 1]`` hidden layer ``l``'s
        activation).
    l2 : float
        The L2 penalty's coefficient of this batch (its gradient is ``l2``
        times the weights).

    Examples
    --------
    A rule reads it in :meth:`LearningRule.hidden_deltas`; DFA's is, in
    short::

        def hidden_deltas(self, ctx, state):
            deltas = []
            for l, (layer, B) in enumerate(zip(ctx.layers[:-1], state.fixed)):
                projected = ctx.ops.matmul(ctx.error, B, out=ctx.buffer(l, B.shape[1]))
                deltas.append(ctx.derivative(l, layer.as_output(projected)))
            return deltas
    """

    def __init__(self, ops, layers, output_activation, hidden, derivative, buffer):
        self.ops = ops
        self.layers = layers
        self.output_activation = output_activation
        self._hidden = hidden
        self._derivative = derivative
        self._buffer = buffer
        self.error = self.targets = self.row_weight = self.inputs = None
        self.l2 = 0.0

    def activation(self, l):
        """Hidden layer ``l``'s activation ``f(a_l)``, before dropout.

        Parameters
        ----------
        l : int
            The hidden layer.

        Returns
        -------
        activation : array of shape (n_samples, ...)
            Shaped like the layer's output; read it, do not write to it.
        """
        return self._hidden[l][: self.error.shape[0], ...]

    def derivative(self, l, delta):
        """Multiply ``delta`` in place by ``f'(a_l)`` and by hidden layer
        ``l``'s dropout mask.

        Parameters
        ----------
        l : int
            The hidden layer.
        delta : array of shape (n_samples, ...)
            The signal at the layer's activation, shaped like its output.

        Returns
        -------
        delta : array
            ``delta`` itself, now ``dLoss/dA_l`` under the rule.
        """
        self._derivative(l, delta)
        return delta

    def buffer(self, key, width):
        """An array to write an intermediate result into, reused across batches.

        Parameters
        ----------
        key : hashable
            Names the buffer: the same key gives the same memory at every
            batch of a fit.
        width : int
            Its number of columns.

        Returns
        -------
        buffer : array of shape (n_samples, width)
            Uninitialised, in the network's dtype, namespace and device.
        """
        return self._buffer(key, width, self.error.shape[0])


class LearningRule(ABC):
    """Base class of the learning rules: how hidden layers get their deltas.

    A rule declares what the rest of skdfa needs to know about it (class
    attributes), creates its state, and computes deltas from a
    :class:`DeltaContext` and the layers' operations. Rule objects hold their
    constructor's parameters only (so they clone, compare and pickle like
    estimator parameters); a fit never changes them.

    Attributes
    ----------
    name : str
        Short name, as ``rule="..."`` spells the built-in rules.
    label : str
        Display name in tables and legends (defaults to ``name``).
    color : str or None
        The rule's matplotlib colour in skdfa's figures (None: the colour
        cycle's next).
    random_feedback : bool
        Whether the feedback depends on the feedback stream's seed (networks
        that differ only in that seed then learn differently).
    layer_kinds : frozenset of str
        The layer kinds (``layer.kind``: ``"dense"``, ``"rd"``, ...) the rule
        trains. For the layer-by-layer rules, the layers it passes signals
        back through (all but the first); for the direct rules, the layers
        that receive a projection (the hidden ones).
    layer_requirement : str or None
        Why the rule trains only ``layer_kinds``, for the error message that
        refuses other layers.

    See Also
    --------
    RuleState : The state a rule creates.
    DeltaContext : What a rule reads to compute deltas.

    Examples
    --------
    A rule is one class (see the user guide, "Write your own learning rule"):

    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skdfa import DFAClassifier
    >>> from skdfa.rules import LearningRule, RuleState
    >>> class SignedDFA(LearningRule):
    ...     "DFA through the signs of fixed random matrices."
    ...     name, label, color, random_feedback = "signed_dfa", "signed DFA", "#00aa88", True
    ...     def init_state(self, layers, sample):
    ...         n_outputs = layers[-1].n_out
    ...         return RuleState(fixed=[np.sign(sample((n_outputs, layer.n_out), layer.n_out))
    ...                                 for layer in layers[:-1]])
    ...     def hidden_deltas(self, ctx, state):
    ...         return [ctx.derivative(l, layer.as_output(ctx.error @ B))
    ...                 for l, (layer, B) in enumerate(zip(ctx.layers[:-1], state.fixed))]
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DFAClassifier((32,), rule=SignedDFA(), max_iter=20, learning_rate_init=0.01,
    ...                     random_state=0).fit(X / 16, y)
    >>> clf.feedback_[0].shape, bool(clf.score(X / 16, y) > 0.9)
    ((10, 32), True)
    """

    name = None
    label = None
    color = None
    random_feedback = False
    layer_kinds = frozenset({"dense", "rd"})
    # Why other layer kinds cannot be trained, for the error message.
    layer_requirement = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.label is None and cls.name is not None:
            cls.label = cls.name
        # An override without a docstring keeps the contract it implements.
        for attr, value in vars(cls).items():
            base = getattr(LearningRule, attr, None)
            if callable(value) and not attr.startswith("_") and not value.__doc__ and base:
                value.__doc__ = base.__doc__

    # -- what the library needs to know --------------------------------------

    def checked_layers(self, layers):
        """The layers whose kinds ``layer_kinds`` must cover.

        Parameters
        ----------
        layers : list of layers
            A network's layers, input to output.

        Returns
        -------
        layers : list of layers
            ``layers[1:]``: those a layer-by-layer rule passes signals back
            through (the direct rules return the hidden layers).
        """
        return layers[1:]

    def check_layers(self, layers):
        """Raise a ValueError naming the layers this rule cannot train.

        Parameters
        ----------
        layers : list of layers
            A network's layers, input to output.
        """
        unsupported = sorted(
            {layer.kind for layer in self.checked_layers(layers)} - set(self.layer_kinds)
        )
        if unsupported:
            able = sorted(
                name for name, rule in RULES.items()
                if set(unsupported) <= set(rule.layer_kinds)
            )
            reason = self.layer_requirement or (
                f"trains only {', '.join(sorted(self.layer_kinds))} layers here"
            )
            raise ValueError(
                f"rule={self.name!r} {reason}, which {', '.join(unsupported)} layers "
                f"are not; use one of {able}."
            )

    def error_signal_macs(self, units):
        """Multiply-adds per sample of the hidden error signals (``skdfa bench``).

        Parameters
        ----------
        units : list of int
            A dense network's widths, ``[n_features, hidden..., n_outputs]``.

        Returns
        -------
        macs : int
            Here, back-propagation's: through every layer but the first.
        """
        return sum(a * b for a, b in zip(units[1:-1], units[2:]))

    # -- state -------------------------------------------------------------------

    @abstractmethod
    def init_state(self, layers, sample):
        """Create the rule's state for a network whose weights are initialised.

        Parameters
        ----------
        layers : list of layers
            The network's layers, input to output; their arrays may be in any
            namespace.
        sample : FeedbackSampler
            ``sample(shape, receiving_width)`` draws a numpy matrix from the
            feedback stream (layer-by-layer rules use a layer's
            ``feedback_shape`` and ``feedback_width``).

        Returns
        -------
        state : RuleState
            Of numpy arrays: the engine moves it to the network's namespace
            and device.
        """

    def feedback_matrices(self, state, layers):
        """The feedback that the estimators publish in ``feedback_``.

        Parameters
        ----------
        state : RuleState
            The rule's state.
        layers : list of layers
            The network's layers.

        Returns
        -------
        feedback : list of array
            One ``B_l`` per hidden layer (views, no copies); empty for rules
            without feedback. Here, ``state.fixed`` then ``state.learned``.
        """
        return [a for a in state.fixed + state.learned if a is not None]

    # -- training ----------------------------------------------------------------

    @abstractmethod
    def hidden_deltas(self, ctx, state):
        """The hidden layers' deltas ``dLoss/dA_l``, first layer first.

        Parameters
        ----------
        ctx : DeltaContext
            The batch, after the forward pass.
        state : RuleState
            The rule's state.

        Returns
        -------
        deltas : list of array or None
            One per hidden layer, shaped like its output (None for a layer
            without parameters that needs none).
        """

    def feedback_gradients(self, ctx, state, layer_grads, grads):
        """Write the gradients of ``state.learned`` into ``grads``.

        Parameters
        ----------
        ctx : DeltaContext
            The batch.
        state : RuleState
            The rule's state.
        layer_grads : list of list of array
            ``layer_grads[l]``: layer ``l``'s parameter gradients, without the
            L2 penalty (``ctx.l2`` times the weights, which the optimizer adds
            to theirs).
        grads : list of array
            Shaped like ``state.learned``, in its order; written in place,
            without any L2 penalty: the optimizer adds the one that
            :meth:`decay_sources` names.
        """

    def decay_sources(self, state, layers):
        """What the L2 penalty adds to the gradient of each learned array.

        The optimizer adds ``l2`` times the named array to that gradient
        (``l2`` is ``ctx.l2``): the penalty is applied there and nowhere else.

        Parameters
        ----------
        state : RuleState
            The rule's state.
        layers : list of layers
            The network's layers.

        Returns
        -------
        sources : list of array or None
            One per array of ``state.learned``: the array whose multiple is
            the penalty's gradient, which must keep its place (a view, updated
            in place), or None for no penalty. Here, None for every one:
            learned feedback is not penalized.
        """
        return [None] * len(state.learned)

    def update_state(self, state, layers, sample, decay):
        """Change the state after each update of the weights (here, nothing).

        Parameters
        ----------
        state : RuleState
            The rule's state, changed in place.
        layers : list of layers
            The network's layers, just updated.
        sample : FeedbackSampler
            The feedback stream, for rules that redraw.
        decay : float
            The estimator's ``feedback_decay``.
        """

    # -- diagnostics ---------------------------------------------------------------

    def forward_paths(self, layers):
        """The forward maps each hidden layer's feedback stands in for.

        Parameters
        ----------
        layers : list of layers
            The network's layers.

        Returns
        -------
        paths : list of array
            Shaped like the feedback: here ``W_{l+1}.T``, each layer's
            ``backward_weights()``.
        """
        return [layer.backward_weights() for layer in layers[1:]]

    def weight_alignment(self, state, layers):
        """Angles between each hidden layer's feedback and its forward path.

        Parameters
        ----------
        state : RuleState
            The rule's state.
        layers : list of layers
            The network's layers.

        Returns
        -------
        degrees : ndarray of shape (n_hidden_layers,)
            :func:`angle` of ``feedback_matrices`` and ``forward_paths``
            (NaN where a path is not a matrix: through a convolution).
        """
        feedback = self.feedback_matrices(state, layers)
        return np.array([
            np.nan if P is None else angle(B, P, layers[-1].ops)
            for B, P in zip(feedback, self.forward_paths(layers))
        ])

    # -- a rule is its parameters ------------------------------------------------------

    def _param_names(self):
        signature = inspect.signature(type(self).__init__)
        return [
            p.name for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def __repr__(self):
        # The parameters that differ from their defaults, as sklearn prints
        # estimators: the built-in rules print as ``DirectFeedbackAlignment()``.
        parameters = inspect.signature(type(self).__init__).parameters
        args = ", ".join(
            f"{n}={getattr(self, n)!r}" for n in self._param_names()
            if parameters[n].default is inspect.Parameter.empty
            or not _same(getattr(self, n), parameters[n].default)
        )
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and all(
            _same(getattr(self, n), getattr(other, n)) for n in self._param_names()
        )

    def __hash__(self):
        return hash((type(self), tuple(repr(getattr(self, n)) for n in self._param_names())))


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a is b or a == b


# Layer kinds: the dense and RD layers, and convolution and pooling
# (``_conv.py``), which every built-in rule trains.
_CONV_KINDS = frozenset({"conv2d", "maxpool2d", "avgpool2d", "globalavgpool2d"})


def _with_feedback(layers):
    """The layers above the first that a feedback array stands in for: those
    with weights (pooling has none, and passes signals back unchanged)."""
    return [layer for layer in layers[1:] if layer.feedback_shape is not None]


class BackPropagation(LearningRule):
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
    layer_kinds = frozenset({"dense", "rd"}) | _CONV_KINDS

    def init_state(self, layers, sample):
        return RuleState()

    def hidden_deltas(self, ctx, state):
        layers = ctx.layers
        deltas = [None] * (len(layers) - 1)
        upstream = ctx.error
        for l in range(len(layers) - 2, -1, -1):
            upstream = layers[l + 1].backward(upstream)
            deltas[l] = ctx.derivative(l, upstream)
        return deltas

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


class FeedbackAlignment(LearningRule):
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
    layer_kinds = frozenset({"dense", "rd"}) | _CONV_KINDS

    def init_state(self, layers, sample):
        return RuleState(fixed=[_draw_like_weights(layer, sample) for layer in layers[1:]])

    def _feedback(self, state, layers):
        """The feedback of each layer of ``layers[1:]`` (None for pooling)."""
        return state.fixed

    def weight_alignment(self, state, layers):
        """Angles between each ``B_{l+1}`` and ``W_{l+1}.T`` (a convolution's
        kernel), NaN for a hidden layer under a pooling (no weights).

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
        feedback = self._feedback(state, layers)
        return np.array([
            np.nan if B is None else angle(B, layer.backward_weights(), layer.ops)
            for B, layer in zip(feedback, layers[1:])
        ])

    def hidden_deltas(self, ctx, state):
        layers = ctx.layers
        feedback = self._feedback(state, layers)
        deltas = [None] * (len(layers) - 1)
        upstream = ctx.error
        for l in range(len(layers) - 2, -1, -1):
            upstream = layers[l + 1].backward(upstream, feedback[l])
            deltas[l] = ctx.derivative(l, upstream)
        return deltas


def _draw_like_weights(layer, sample):
    """A random stand-in for ``layer``'s weights in ``backward`` (None for a
    layer without weights)."""
    shape = layer.feedback_shape
    return None if shape is None else sample(shape, layer.feedback_width)


class _SignSymmetry(FeedbackAlignment):
    """The feedback alignment path with ``B_{l+1} = magnitude * sign(W_{l+1}.T)``:
    the feedback carries the forward weights' signs, not their values (Liao,
    Leibo and Poggio, 2016). Subclasses choose the magnitude; ``B`` follows
    the weights' signs after every update."""

    random_feedback = True
    layer_kinds = frozenset({"dense"}) | _CONV_KINDS
    layer_requirement = (
        "builds its feedback from dense forward weights (coef) or convolution kernels"
    )

    def init_state(self, layers, sample):
        feedback = [
            None if layer.feedback_shape is None else np.empty(layer.feedback_shape, sample.dtype)
            for layer in layers[1:]
        ]
        magnitudes = self._magnitudes(layers, sample)
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
        self._set_signs(state.fixed, layers, self._magnitudes(layers, sample))


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

    def _magnitudes(self, layers, sample):
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
        drawn = [_draw_like_weights(layer, sample) for layer in layers[1:]]
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

    def _magnitudes(self, layers, sample):
        drawn = [_draw_like_weights(layer, sample) for layer in layers[1:]]
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
    layer_kinds = frozenset({"dense"}) | _CONV_KINDS
    layer_requirement = (
        "builds its feedback from dense forward weights (coef) or convolution kernels"
    )

    def init_state(self, layers, sample):
        # Only arrays: the optimizer moves every one (pooling has none).
        drawn = [_draw_like_weights(layer, sample) for layer in layers[1:]]
        return RuleState(learned=[B for B in drawn if B is not None])

    def _feedback(self, state, layers):
        learned = iter(state.learned)
        return [None if layer.feedback_shape is None else next(learned) for layer in layers[1:]]

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


class DirectFeedbackAlignment(LearningRule):
    """Direct feedback alignment (Nøkland, 2016): the output error reaches every
    hidden layer directly through fixed random feedback.

    Below a convolution the error can enter in two places, which
    ``conv_feedback`` chooses; in a network without convolutions (or where a
    dense layer comes next) both are ``delta_l = (e @ B_l) * f'(a_l)``, with
    the same draws, and train identically.

    - ``"map"`` (Nøkland's form): every hidden layer with parameters gets
      ``(e @ B_l) * f'(a_l)`` at its own output, a convolution at its output
      map before pooling, through a matrix ``B_l`` of shape ``(n_outputs,
      C_l * H_l * W_l)``. Pooling layers receive nothing.
    - ``"kernel"`` (biotorch's ``layers/dfa``, Sanfiz and Akrout, 2021):
      every layer with parameters replaces the gradient with respect to its
      input by a projection of ``e``. Hidden layer ``l`` thus receives the
      signal of the next layer with parameters above it, at that layer's
      input, and passes it back through the pooling in between (to each
      window's maximum) before ``f'(a_l)``. Above a dense layer the signal is
      ``e @ B`` with ``B`` of shape ``(n_outputs, n_in)``. Above a
      convolution of kernel ``(C_out, C_in, kh, kw)`` it is that
      convolution's input gradient, through a random kernel ``K`` of shape
      ``(n_outputs, C_in, kh, kw)``, of ``e`` repeated at every position of
      its output map. That map is spatially constant, so the signal is ``e @
      D`` with a fixed ``(n_outputs, C_in * H_in * W_in)`` matrix ``D``, built
      once from ``K``: ``D[k, c, i, j]`` is the sum of the ``K[k, c, u, v]``
      whose output position ``(i - u + padding, j - v + padding)`` lies in
      the output map. ``K`` is drawn with the kernel's fan-in ``C_in kh kw``
      as receiving width, as the feedback-alignment rules' kernels;
      ``feedback_scale="glorot"`` draws it as biotorch does.

    All blocks (``B_l`` or ``D``) are column blocks of one matrix, so every
    hidden layer's projection is one matrix product per batch; a block is as
    wide as the flattened map it lands on, and ``layer.as_output`` gives the
    delta the layer's output shape. Hidden layers without parameters
    (pooling) get no delta of their own: their delta is None.

    Parameters
    ----------
    conv_feedback : {"map", "kernel"}, default="map"
        Where the error enters below a convolution: at each layer's own
        output (``"map"``) or, as in biotorch, at the input of the next layer
        with parameters, through a random kernel above a convolution
        (``"kernel"``).

    Attributes
    ----------
    name, label : str
        ``"dfa"`` (``rule="dfa"``), ``"DFA"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import DirectFeedbackAlignment
    >>> rule = DirectFeedbackAlignment()
    >>> rule.name, rule.label, rule.random_feedback
    ('dfa', 'DFA', True)

    biotorch's form on a small convolutional network: the first convolution
    learns through the second's feedback kernel, the others through
    matrices (``feedback_``).

    >>> import numpy as np
    >>> from skdfa import ConvDFAClassifier
    >>> X, y = np.random.RandomState(0).rand(30, 64), np.arange(30) % 3
    >>> clf = ConvDFAClassifier(conv_layers=((4, 3), (6, 3)), pool_size=(2, 1),
    ...                         hidden_layer_sizes=(8,), max_iter=2, random_state=0,
    ...                         rule=DirectFeedbackAlignment(conv_feedback="kernel"))
    >>> [B.shape for B in clf.fit(X, y).feedback_]
    [(3, 4, 3, 3), (3, 6), (3, 8)]
    """

    name = "dfa"
    label = "DFA"
    color = "#ff7f0e"  # orange
    random_feedback = True
    layer_kinds = frozenset({"dense", "rd"}) | _CONV_KINDS
    # The default for subclasses of users whose ``__init__`` does not call this one.
    conv_feedback = "map"

    def __init__(self, conv_feedback="map"):
        self.conv_feedback = conv_feedback

    def checked_layers(self, layers):
        # The layers that receive a projection (pooling receives none).
        return [layer for layer in layers[:-1] if layer.n_params]

    def error_signal_macs(self, units):
        # A dense network's (``skdfa bench``): the same for both forms.
        return units[-1] * sum(units[1:-1])

    def _entries(self, layers):
        """Where each hidden layer with parameters receives its projection.

        ``(l, entry, through_kernel)`` per hidden layer ``l`` with parameters,
        first layer first: the projection lands on layer ``entry``'s output
        (``l`` itself for ``"map"``; for ``"kernel"``, the layer under the
        next one with parameters), through that layer's feedback kernel when
        ``through_kernel``.
        """
        kernel_form = self.conv_feedback == "kernel"
        entries = []
        for l, layer in enumerate(layers[:-1]):
            if not layer.n_params:
                continue
            entry = l
            while kernel_form and not layers[entry + 1].n_params:
                entry += 1
            entries.append((l, entry, kernel_form and layers[entry + 1].kind == "conv2d"))
        return entries

    def init_state(self, layers, sample):
        if self.conv_feedback not in ("map", "kernel"):
            raise ValueError(
                f"{type(self).__name__}: conv_feedback must be 'map' or 'kernel'; "
                f"got {self.conv_feedback!r}."
            )
        n_outputs = layers[-1].n_out
        blocks, kernels = [], []
        for _, entry, through_kernel in self._entries(layers):
            if through_kernel:
                conv = layers[entry + 1]
                kernel = sample((n_outputs, *conv.kernel_shape[1:]), conv.feedback_width)
                kernels.append(kernel)
                blocks.append(conv.constant_map_projection(kernel))
            else:
                width = layers[entry].n_out
                blocks.append(sample((n_outputs, width), width))
        if not blocks:
            return RuleState()
        # The kernels only for feedback_: the projections read D.
        extras = {"kernels": kernels} if kernels else {}
        return RuleState(**{self._slot: [np.hstack(blocks)]}, extras=extras)

    # Where the state keeps the matrix: "learned" for direct Kolen-Pollack.
    _slot = "fixed"

    def _matrix(self, state):
        matrices = getattr(state, self._slot)
        return matrices[0] if matrices else None

    def feedback_matrices(self, state, layers):
        """The feedback that the estimators publish in ``feedback_``.

        Parameters
        ----------
        state : RuleState
            The rule's state.
        layers : list of layers
            The network's layers.

        Returns
        -------
        feedback : list of array
            One per hidden layer with parameters (views, no copies): its
            ``B_l``, of shape ``(n_outputs, width)``, the width of the map
            the projection lands on; with ``conv_feedback="kernel"``, for a
            layer under a convolution, that convolution's feedback kernel
            ``K``, of shape ``(n_outputs, C_in, kh, kw)`` (biotorch's
            ``weight_backward``), not the matrix ``D`` built from it.
        """
        feedback = self._matrix(state)
        if feedback is None:
            return []
        kernels = iter(state.extras.get("kernels", ()))
        blocks, start = [], 0
        for _, entry, through_kernel in self._entries(layers):
            width = layers[entry].n_out
            blocks.append(next(kernels) if through_kernel else feedback[:, start : start + width])
            start += width
        return blocks

    def _signal(self, ctx):
        """What the feedback projects: the output error."""
        return ctx.error

    def hidden_deltas(self, ctx, state):
        deltas = [None] * (len(ctx.layers) - 1)
        feedback = self._matrix(state)
        if feedback is None:
            return deltas
        projected = ctx.ops.matmul(
            self._signal(ctx), feedback, out=ctx.buffer("projection", feedback.shape[1])
        )
        start = 0
        for l, entry, _ in self._entries(ctx.layers):
            width = ctx.layers[entry].n_out
            signal = projected[:, start : start + width]
            start += width
            # "kernel": back through the pooling between layer l and the next
            # layer with parameters, to each window's maximum.
            for between in ctx.layers[entry:l:-1]:
                signal = between.backward(signal)
            deltas[l] = ctx.derivative(l, ctx.layers[l].as_output(signal))
        return deltas

    def forward_paths(self, layers):
        """The whole forward path from each hidden layer to the output.

        Parameters
        ----------
        layers : list of layers
            The network's layers.

        Returns
        -------
        paths : list of array or None
            ``(W_{l+1} @ ... @ W_L).T``, which ``B_l`` stands in for, per
            hidden layer; None where the path goes through a convolution or
            a pooling (no matrix).
        """
        paths = [None] * (len(layers) - 1)
        path = layers[-1].weight_matrix()
        for l in range(len(layers) - 2, -1, -1):
            paths[l] = None if path is None else path.T
            if l:
                W = layers[l].weight_matrix()
                path = None if path is None or W is None else W @ path
        return paths

    def weight_alignment(self, state, layers):
        """Angles between each ``B_l`` and the forward path it stands in for,
        NaN for a pooling (no feedback) or where the path is not a matrix.

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
        blocks = iter(self.feedback_matrices(state, layers))
        degrees = []
        for layer, path in zip(layers[:-1], self.forward_paths(layers)):
            B = next(blocks) if layer.n_params else None
            degrees.append(np.nan if B is None or path is None else angle(B, path, layer.ops))
        return np.array(degrees)


class DirectRandomTargetProjection(DirectFeedbackAlignment):
    """Direct random target projection (Frenkel et al., 2021): like DFA, but
    projects the targets instead of the error, so the hidden layers' updates
    need no output (they can be computed before the forward pass ends).

    Parameters
    ----------
    conv_feedback : {"map", "kernel"}, default="map"
        Where the targets enter below a convolution, as for
        :class:`DirectFeedbackAlignment`.

    Attributes
    ----------
    name, label : str
        ``"drtp"`` (``rule="drtp"``), ``"DRTP"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import DirectRandomTargetProjection
    >>> rule = DirectRandomTargetProjection()
    >>> rule.name, rule.label, rule.random_feedback
    ('drtp', 'DRTP', True)
    """

    name = "drtp"
    label = "DRTP"
    color = "#d62728"  # red

    def _signal(self, ctx):
        # A single binary column is coded -1/+1, the difference of its two
        # one-hot columns. Coded 0/1, the negative class would send nothing,
        # and every update would push all samples the same way, never apart.
        Y = ctx.targets
        if Y.shape[1] == 1 and ctx.output_activation == "logistic":
            Y = 2 * Y - 1
        return Y * ctx.row_weight


class SignDirectFeedbackAlignment(DirectFeedbackAlignment):
    """Sign-DFA (Frenkel et al., 2021; the ``"sDFA"`` mode of their DRTP code,
    ``function.py``): like DFA, but projects the sign of each sample's error,
    weighted like the error, ``sign(e) * w``; only the output layer sees the
    error's magnitude. With softmax or logistic outputs and 0/1 targets,
    ``sign(P - Y) = 1 - 2 Y``: like DRTP's, the signal depends on the target
    alone, and it never shrinks as the network learns.

    Parameters
    ----------
    conv_feedback : {"map", "kernel"}, default="map"
        Where the error's sign enters below a convolution, as for
        :class:`DirectFeedbackAlignment`.

    Attributes
    ----------
    name, label : str
        ``"sdfa"`` (``rule="sdfa"``), ``"sDFA"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import SignDirectFeedbackAlignment
    >>> rule = SignDirectFeedbackAlignment()
    >>> rule.name, rule.label, rule.random_feedback
    ('sdfa', 'sDFA', True)
    """

    name = "sdfa"
    label = "sDFA"
    color = "#9467bd"  # purple

    def _signal(self, ctx):
        signal = ctx.ops.xp.sign(ctx.error)
        signal *= ctx.row_weight
        return signal


class DirectKolenPollack(DirectFeedbackAlignment):
    """Direct Kolen-Pollack (Webster, Choi and Ahn, 2020; webstah/dkp-gist,
    ``DFATrainingHook``): the DFA path with a learnt ``B_l``.

    ``B_l`` learns as if it were a direct forward connection from hidden
    layer ``l`` to the output, of weights ``B_l.T``: its gradient is
    ``e.T @ h_l``, the estimator's optimizer moves it with the weights
    (plain SGD gives ``dB_l = -lr * e.T @ h_l``), and after each update it is
    multiplied by ``1 - feedback_decay``.

    Parameters
    ----------
    conv_feedback : {"map"}, default="map"
        Only ``"map"``: each ``B_l`` is a connection from hidden layer
        ``l``'s own output, so biotorch's ``"kernel"`` form of
        :class:`DirectFeedbackAlignment`, which has none there, raises a
        ValueError at fit.

    Attributes
    ----------
    name, label : str
        ``"dkp"`` (``rule="dkp"``), ``"DKP"``.
    random_feedback : bool
        True.

    Examples
    --------
    >>> from skdfa.rules import DirectKolenPollack
    >>> rule = DirectKolenPollack()
    >>> rule.name, rule.label, rule.random_feedback
    ('dkp', 'DKP', True)
    """

    name = "dkp"
    label = "DKP"
    color = "#393b79"  # navy
    _slot = "learned"

    def init_state(self, layers, sample):
        if self.conv_feedback == "kernel":
            # Its gradient e.T @ h_l makes B_l a forward connection from
            # layer l's own output: the "map" form only.
            raise ValueError(
                "DirectKolenPollack learns each B_l as a direct connection from "
                "hidden layer l's output to the output, so it has only "
                "conv_feedback='map'; got conv_feedback='kernel'."
            )
        return super().init_state(layers, sample)

    def error_signal_macs(self, units):
        # The projection, and the feedback's own gradient e.T @ h_l.
        return 2 * units[-1] * sum(units[1:-1])

    def feedback_gradients(self, ctx, state, layer_grads, grads):
        (grad,) = grads
        start = 0
        for layer, h in zip(ctx.layers, ctx.inputs[1:]):
            if not layer.n_params:
                continue
            if h.ndim > 2:  # a feature map, flattened as B_l's columns are
                h = ctx.ops.xp.reshape(h, (h.shape[0], layer.n_out))
            ctx.ops.matmul(ctx.error.T, h, grad[:, start : start + layer.n_out])
            start += layer.n_out

    def update_state(self, state, layers, sample, decay):
        if decay and state.learned:
            state.learned[0] *= 1.0 - decay


def _builtin_rules(namespace):
    """An instance of every rule class defined in this module (those that
    set a ``name``), by name, in the order of their definitions."""
    return {
        cls.name: cls()
        for cls in list(namespace.values())
        if isinstance(cls, type) and issubclass(cls, LearningRule) and vars(cls).get("name")
    }


RULES = _builtin_rules(globals())
"""The built-in rules, by name (each a :class:`LearningRule` instance)."""


def get_rule(rule):
    """The :class:`LearningRule` that ``rule`` names or is.

    Parameters
    ----------
    rule : str or LearningRule
        A built-in rule's name (a key of ``RULES``) or a rule instance.

    Returns
    -------
    rule : LearningRule
        ``RULES[rule]`` for a name, ``rule`` itself for an instance.

    Raises
    ------
    ValueError
        For anything else, naming the built-in rules.

    Examples
    --------
    >>> from skdfa.rules import get_rule
    >>> rule = get_rule("dfa")
    >>> rule, rule.label, rule.color
    (DirectFeedbackAlignment(), 'DFA', '#ff7f0e')
    """
    if isinstance(rule, LearningRule):
        return rule
    if isinstance(rule, str):
        try:
            return RULES[rule]
        except KeyError:
            pass
    raise ValueError(
        f"Unknown learning rule {rule!r}: use one of {sorted(RULES)} or an instance "
        "of a skdfa.rules.LearningRule subclass."
    )
