"""The learning-rule API: what a rule is, what it reads and what it keeps.

A learning rule decides how the hidden layers of a network get their error
signal ``delta``; the output layer always receives its exact gradient. This
module holds what every rule shares: the base class :class:`LearningRule`,
the state a rule keeps during a fit (:class:`RuleState`), what it reads at
every batch (:class:`DeltaContext`), the feedback stream it draws from
(:class:`FeedbackSampler`) and the diagnostics' :func:`angle`. The two rule
families and their public bases live beside it: ``_direct_rules.py``
(:class:`DirectRule`: DFA, DRTP, sDFA, DKP) and ``_layerwise_rules.py``
(:class:`LayerByLayerRule`: BP, FA, the sign rules, KP); ``_rules.py``
registers the built-in rules.

A rule object holds only its constructor's parameters; everything a fit
changes lives in the :class:`RuleState` that :meth:`LearningRule.init_state`
creates, which the network keeps. The rule reads the network only through a
:class:`DeltaContext` and the layers' public operations (``backward``,
``as_output``, ``feedback_shape``, ``as_feedback``, ``weights``), so a new
layer type that provides those operations trains under every rule that
lists its ``kind``.
"""

import inspect
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ._array_ops import array_ops
from ._feedback import FEEDBACK_SAMPLERS, feedback_scale


# Private hooks of the built-in rules before 0.2, and what replaced them.
_RENAMED_HOOKS = {
    "_signal": "signal(ctx) (DirectRule)",
    "_slot": "learned_feedback = True (DirectRule)",
    "_feedback": "layer_feedback(state, layers) (LayerByLayerRule)",
    "_magnitudes": "magnitudes(layers, sample) (the sign-symmetry rules)",
}


class AlignmentShapeWarning(UserWarning):
    """An alignment angle compared arrays of different shapes, and is NaN.

    Raised by :func:`angle` (and so by ``weight_alignment_``) when a rule's
    ``forward_paths`` do not match its feedback: a direct rule written on
    :class:`LearningRule` alone keeps the layer-by-layer default. Training
    goes on; derive such a rule from :class:`DirectRule` to get its paths
    right.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skdfa.rules import AlignmentShapeWarning, angle
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     degrees = angle(np.ones((10, 32)), np.ones((32, 32)))
    >>> bool(np.isnan(degrees)), caught[0].category is AlignmentShapeWarning
    (True, True)
    """


# Layer kinds: the dense and RD layers, and convolution and pooling
# (``_conv.py``), which every built-in rule trains.
_CONV_KINDS = frozenset({"conv2d", "maxpool2d", "avgpool2d", "globalavgpool2d"})


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
        In [0, 180]; NaN when either array is zero, and NaN with a
        :class:`AlignmentShapeWarning` when their shapes differ (a rule's
        ``forward_paths`` that does not match its feedback).

    Examples
    --------
    >>> import numpy as np
    >>> from skdfa.rules import angle
    >>> round(angle(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])), 9)
    45.0
    """
    if tuple(a.shape) != tuple(b.shape):
        warnings.warn(
            f"An alignment angle is NaN: the feedback has shape {tuple(a.shape)} but the "
            f"forward path it is compared with has shape {tuple(b.shape)}. A direct rule "
            "should derive from skdfa.rules.DirectRule (or override forward_paths).",
            AlignmentShapeWarning, stacklevel=2,
        )
        return np.nan
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

    def move(self, converter):
        """Replace every array of the state by ``converter(array)``, in place
        (the lists keep their identity and their None entries).

        Parameters
        ----------
        converter : callable
            Maps an array to its copy in another namespace or device.
        """
        for part in [self.fixed, self.learned, *self.extras.values()]:
            part[:] = [None if a is None else converter(a) for a in part]


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
        The layer kinds (``layer.kind``: ``"dense"``, ``"rd"``, ``"conv2d"``,
        ``"maxpool2d"``) the rule trains or passes signals through; a network
        with a layer of another kind (among :meth:`checked_layers`) is
        refused with a ValueError, never trained silently.
    layer_requirement : str or None
        Why the rule trains only ``layer_kinds``, for the error message that
        refuses other layers.
    exact_gradient : bool
        Whether the rule's updates are the loss's exact gradient (then
        ``solver="lbfgs"`` accepts it).

    See Also
    --------
    DirectRule : The base of the direct rules (DFA and its variants).
    LayerByLayerRule : The base of the layer-by-layer rules (BP, FA and theirs).
    RuleState : The state a rule creates.
    DeltaContext : What a rule reads to compute deltas.

    Examples
    --------
    A variant of a built-in rule derives from :class:`DirectRule` or
    :class:`LayerByLayerRule` and overrides one public hook. A rule of a new
    kind derives from this class (see the user guide, "Write your own
    learning rule"):

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
    exact_gradient = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        # The private hooks of the built-in rules before 0.2 are public now:
        # an override of an old name would be silently ignored.
        renamed = [old for old in _RENAMED_HOOKS if old in own]
        if renamed:
            raise TypeError(
                f"{cls.__name__} overrides {', '.join(renamed)}, which skdfa's rules no "
                "longer call; override "
                + ", ".join(_RENAMED_HOOKS[old] for old in renamed)
                + " instead (see the user guide, 'Write your own learning rule')."
            )
        # A variant of a rule is a rule of its own in tables and figures: it
        # is called by its class name, in the colour cycle's next colour,
        # unless it says otherwise.
        if "name" not in own:
            cls.name = cls.__name__
            if "color" not in own:
                cls.color = None
        if "label" not in own:
            cls.label = cls.name
        # An override without a docstring keeps the contract it implements.
        for attr, value in own.items():
            if not callable(value) or attr.startswith("_") or value.__doc__:
                continue
            documented = [vars(base)[attr] for base in cls.__mro__[1:] if attr in vars(base)]
            if documented and documented[0].__doc__:
                value.__doc__ = documented[0].__doc__

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
            Here every layer: a rule of unknown form may train any layer and
            pass signals through any. The bases narrow it
            (:class:`DirectRule`: the layers a projection reaches or passes
            through; :class:`LayerByLayerRule`: the layers above the first,
            which it passes signals back through).
        """
        return layers

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
            from ._rules import RULES

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

    def error_signal_macs(self, layers):
        """Multiply-adds per sample of the hidden error signals (``skdfa bench``).

        Parameters
        ----------
        layers : list of layers
            The network's layers, input to output. Each has ``n_out``,
            ``n_params`` and ``forward_macs`` (the multiply-adds per sample
            of its forward product; 0 for a pooling).

        Returns
        -------
        macs : int
            Here, back-propagation's: an input gradient through every layer
            with parameters above the first, as many multiply-adds as its
            forward product.
        """
        with_params = [layer for layer in layers if layer.n_params]
        return sum(layer.forward_macs for layer in with_params[1:])

    # -- state -------------------------------------------------------------------

    def draw_feedback(self, sample, shape, receiving_width):
        """Draw one random feedback array; a public hook for variants.

        Every random array that a built-in rule draws from the feedback
        stream comes from here: DFA's matrices and kernels, FA's matrices
        and kernels, frSF's and brSF's magnitudes. A variant that changes how
        feedback is drawn (its scale, its sparsity, its signs) overrides it.

        Parameters
        ----------
        sample : FeedbackSampler
            The feedback stream, with the estimator's distribution and scale.
        shape : tuple of int
            The array's shape.
        receiving_width : int
            The width of the layer that the feedback feeds, for
            ``feedback_scale="auto"``.

        Returns
        -------
        feedback : ndarray of shape ``shape``
            A numpy array: here ``sample(shape, receiving_width)``.
        """
        return sample(shape, receiving_width)

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
            (NaN where a path is not a matrix, through a convolution, and
            NaN with a warning where their shapes differ).
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

