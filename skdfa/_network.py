"""The network: a stack of layers, its forward pass and its gradients.

Data flows one way: the layers compute the forward pass, the learning rule
(``_rules.py``) turns the output error into hidden deltas, the layers turn
deltas into gradients, and an optimizer (``_optimizers.py``) applies them.
"""

from typing import NamedTuple

import numpy as np

from ._array_ops import array_ops
from ._base import ACTIVATIONS, DERIVATIVES, OUTPUTS
from ._rule_api import DeltaContext, RuleState, angle
from ._rules import RULES, get_rule

# Back-propagation's (empty) state, for the deltas it is compared with.
_NO_STATE = RuleState()

# Rows per chunk at inference, so that predict's memory does not grow with
# n_samples times the hidden width (about 4M values per hidden buffer).
_INFERENCE_CHUNK_VALUES = 1 << 22


def _activated(layer):
    """Whether the activation follows ``layer`` (a layer type without the
    attribute is activated; max pooling is not)."""
    return getattr(layer, "activated", True)


class Network:
    """A feed-forward network trained by a pluggable learning rule.

    Parameters
    ----------
    layers : list of layer objects
        From input to output (see ``_layers.py`` for the interface).
    activation : str
        Hidden activation, a key of ``ACTIVATIONS``.
    output : {"identity", "softmax", "logistic"}
        Output activation; the loss is its canonical one (``OUTPUTS``).
    rule : str or LearningRule
        Learning rule, a key of ``RULES`` or a rule object.

    Attributes
    ----------
    ops : ArrayOps or None
        The array operations of the parameters' namespace and device, looked
        up once when the parameters are created, moved (:meth:`convert`) or
        loaded, and handed to every layer (:meth:`use_ops`); None before
        ``initialize_weights``.
    rule_state : RuleState
        The rule's state (its feedback), created by ``initialize_feedback``.
    sampler : FeedbackSampler
        The feedback stream and distribution the rule draws from.
    """

    def __init__(self, layers, activation, output, rule):
        self.layers = layers
        self.activation = activation
        self.output = output
        self.rule = get_rule(rule)
        self.rule_state = None
        self.ops = None

    @property
    def n_layers(self):
        return len(self.layers)

    @property
    def units(self):
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def params(self):
        """The layers' parameters, then the feedback the rule learns."""
        learned = [] if self.rule_state is None else self.rule_state.learned
        return [p for layer in self.layers for p in layer.params] + learned

    @property
    def regularized_params(self):
        return [
            p
            for layer in self.layers
            for p, reg in zip(layer.params, layer.regularized)
            if reg
        ]

    def decay_sources(self):
        """Per parameter of ``params``, the array whose multiple by the L2
        coefficient is the penalty's gradient (the optimizer adds it), or None
        where there is no penalty: a layer's regularized parameters
        themselves (weights, not biases), and for learned feedback what the
        rule says (``LearningRule.decay_sources``)."""
        sources = [
            p if reg else None
            for layer in self.layers
            for p, reg in zip(layer.params, layer.regularized)
        ]
        if self.rule_state is not None:
            sources += self.rule.decay_sources(self.rule_state, self.layers)
        return sources

    @property
    def n_params(self):
        return sum(layer.n_params for layer in self.layers)

    @property
    def dtype(self):
        return self.layers[0].params[0].dtype

    def use_ops(self, ops):
        """Compute with ``ops`` from now on, the network and every layer."""
        self.ops = ops
        for layer in self.layers:
            layer.ops = ops

    def move(self, converter):
        """Replace every array of the network (the layers', the rule state's)
        by ``converter(array)``, in place, and compute with the operations of
        the new arrays' namespace and device (looked up here, once). The rule
        object is the user's: it is never touched."""
        for layer in self.layers:
            layer.move(converter)
        if self.rule_state is not None:
            self.rule_state.move(converter)
        self.use_ops(array_ops(self.params[0]))

    def __getstate__(self):
        # ArrayOps hold modules: they are looked up again on load.
        state = self.__dict__.copy()
        state["ops"] = None
        state["_has_ops"] = self.ops is not None
        return state

    def __setstate__(self, state):
        has_ops = state.pop("_has_ops", False)
        self.__dict__.update(state)
        if has_ops:
            self.use_ops(array_ops(self.params[0]))

    def initialize(self, rng, weight_init, dtype, feedback, to=None):
        """Create every array of the network, in one call.

        The weights are drawn from ``rng``, then the rule's state from the
        :class:`FeedbackSampler` that ``feedback(rng)`` returns (it may draw
        its stream's seed from ``rng``, after the weights), both with numpy,
        so that the same seeds give the same model in every namespace; then
        ``to`` moves every array to the data's namespace and device.

        Every layer's Glorot bound uses the hidden activation's factor, the
        output layer's included, as ``MLPClassifier._init_coef`` does.

        Parameters
        ----------
        rng : numpy.random.RandomState
            The weights' stream.
        weight_init : str
            A layer's ``initialize`` scheme.
        dtype : numpy dtype
            Of every array.
        feedback : callable
            ``feedback(rng)`` returns the :class:`FeedbackSampler` of the rule.
        to : callable, default=None
            Maps a numpy array to the data's namespace and device (None: stay
            numpy).
        """
        for layer in self.layers:
            layer.initialize(rng, weight_init, self.activation, dtype)
        self.use_ops(array_ops(self.params[0]))
        self.initialize_feedback(feedback(rng))
        if to is not None:
            self.move(to)

    def initialize_feedback(self, sampler, to=None):
        """Create the rule's state (draw its feedback) for the current weights.

        ``sampler`` is kept: rules that redraw their feedback during training
        (``"brsf"``) draw from its stream, which is separate from the weights'
        so that the feedback can change while the initial weights stay the
        same. The state is drawn with numpy, then moved by ``to`` (None: it
        stays numpy).
        """
        self.rule.check_layers(self.layers)
        self.sampler = sampler
        self.rule_state = self.rule.init_state(self.layers, sampler)
        if to is not None:
            self.rule_state.move(to)

    def update_feedback(self, decay):
        """Let the rule update its state after an update of the weights."""
        self.rule.update_state(self.rule_state, self.layers, self.sampler, decay)

    def feedback_matrices(self):
        """The feedback matrices ``B_l``, one per hidden layer (empty for bp)."""
        return self.rule.feedback_matrices(self.rule_state, self.layers)

    def weight_alignment(self):
        """Angles in degrees between each hidden layer's feedback and the
        forward path it stands in for (see ``_rules.py``)."""
        return self.rule.weight_alignment(self.rule_state, self.layers)

    def decision(self, X):
        """Output pre-activations for X, computed in chunks of rows."""
        ops = self.ops
        n_samples = X.shape[0]
        out = ops.empty((n_samples, self.units[-1]), self.dtype)
        chunk = max(1, min(n_samples, _INFERENCE_CHUNK_VALUES // max(self.units)))
        buffers = [ops.empty((chunk, layer.n_out), self.dtype) for layer in self.layers[:-1]]
        activate = ACTIVATIONS[self.activation]
        for start in range(0, n_samples, chunk):
            stop = min(start + chunk, n_samples)
            # Chunks are cast to the network's dtype (not the weights to X's).
            inputs = ops.astype(X[start:stop, :], self.dtype)
            for layer, buffer in zip(self.layers[:-1], buffers):
                hidden = buffer[: stop - start, :]
                layer.forward(inputs, hidden)
                if _activated(layer):
                    activate(hidden, ops)
                inputs = hidden
            self.layers[-1].forward(inputs, out[start:stop, :])
        return out

    def predict_output(self, X):
        """Output activations (probabilities for classifiers)."""
        out = self.decision(X)
        ACTIVATIONS[self.output](out, self.ops)
        return out


class Workspace:
    """Buffers of one training batch, allocated once per fit and reused.

    Parameters
    ----------
    net : Network
    batch_size : int
    dropout : tuple of float
        ``(input_rate, hidden_rate)``.
    dropout_rng : numpy.random.Generator
        The estimator's dropout stream (see ``ArrayOps.dropout_masks``).
    """

    def __init__(self, net, batch_size, dropout, dropout_rng):
        ops = net.ops
        dtype = net.dtype
        # The network's array operations, resolved once per fit.
        self.ops = ops
        self._dtype, self._batch_size = dtype, batch_size
        self._buffers = {}
        hidden = [layer.n_out for layer in net.layers[:-1]]
        self.hidden = [ops.empty((batch_size, w), dtype) for w in hidden]
        self.scratch = [ops.empty((batch_size, w), dtype) for w in hidden]
        self.output = ops.empty((batch_size, net.units[-1]), dtype)
        self.error = ops.empty((batch_size, net.units[-1]), dtype)
        self.grads = [ops.empty(p.shape, p.dtype) for p in net.params]
        # The arrays the L2 penalty sums (updated in place, never rebound
        # during a fit), whether its gradient applies to each of ``grads``,
        # and the array it reads there (the optimizer adds it).
        self.regularized = net.regularized_params
        sources = net.decay_sources()
        self.decayed = [source is not None for source in sources]
        self.decay_sources = [
            p if source is None else source for p, source in zip(net.params, sources)
        ]
        self.input_rate, self.hidden_rate = dropout
        self.dropout_masks = (
            ops.dropout_masks(dropout_rng) if max(self.input_rate, self.hidden_rate) > 0 else None
        )
        self.input_mask = None  # allocated at the first batch (X's shape)
        if self.hidden_rate > 0:
            self.masks = [ops.empty((batch_size, w), dtype) for w in hidden]
            self.dropped = [ops.empty((batch_size, w), dtype) for w in hidden]
        self._derivative = DERIVATIVES[net.activation]
        self._activated = [_activated(layer) for layer in net.layers[:-1]]
        # What the rule reads at every batch; ``train_batch`` refills it.
        self.context = DeltaContext(
            ops, net.layers, net.output, self.hidden, self.derivative, self.buffer
        )

    def derivative(self, l, delta):
        """``delta *= f'(a_l)`` (and hidden layer ``l``'s dropout mask), in place;
        nothing for a layer without activation (max pooling)."""
        if not self._activated[l]:
            return
        n = delta.shape[0]
        self._derivative(self.hidden[l][:n, ...], delta, self.scratch[l][:n, ...], self.ops)
        if self.hidden_rate > 0:
            delta *= self.masks[l][:n, ...]

    def buffer(self, key, width, n):
        """An (n, width) buffer for a rule's intermediate result, allocated at
        its first use and kept under ``key`` for the next batches."""
        if key not in self._buffers:
            self._buffers[key] = self.ops.empty((self._batch_size, width), self._dtype)
        return self._buffers[key][:n, :]

    def start_epoch(self):
        """Called before each epoch's first batch."""
        if self.dropout_masks is not None:
            self.dropout_masks.start_epoch()

    def input_dropout_mask(self, X):
        """An input dropout mask shaped like the batch X, in a buffer kept for
        the next batches."""
        if self.input_mask is None:
            self.input_mask = self.ops.empty((self._batch_size, *X.shape[1:]), self._dtype)
        return self.dropout_mask(self.input_mask[: X.shape[0], ...], self.input_rate)

    def dropout_mask(self, out, rate):
        """Draw an inverted-dropout mask into ``out``: 0 with probability
        ``rate``, else 1/(1-rate); returns ``out``.

        numpy draws it from numpy's stream; torch on the tensors' device (see
        ``ArrayOps.dropout_masks``).
        """
        return self.dropout_masks.draw(out, rate)


class BatchResult(NamedTuple):
    """What ``train_batch`` computed besides the gradients (see there)."""

    loss: object  # float, 0-d device array (ArrayOps.device_total) or None
    weight_decay: list | None
    angles: np.ndarray | None


def train_batch(net, ws, X, Y, sample_weight, alpha, track_alignment=False, *,
                weight_sum=None):
    """Forward pass, rule deltas and gradients of one batch, into ``ws.grads``.

    ``ws.grads`` holds the gradients of the data loss; the L2 penalty's,
    ``weight_decay[i] * ws.decay_sources[i]``, is added by the optimizer
    (``update_params(params, ws.grads, result.weight_decay)``), which torch's
    fused Adam does within its own pass over the weights.

    Parameters
    ----------
    net : Network
    ws : Workspace
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The batch; never written to.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets (one-hot for classifiers), in the network's dtype.
    sample_weight : ndarray of shape (n_samples,) or None
    alpha : float
        L2 penalty.
    track_alignment : bool
        Also compute each hidden layer's angle to back-propagation.
    weight_sum : float, default=None
        The sum of ``sample_weight``, when the caller has read it already (the
        training loop reads an epoch's batch sums from the device at once);
        None: summed here.

    Returns
    -------
    result : BatchResult
        ``loss``: the batch's weighted mean loss plus the L2 penalty (a
        float, or a 0-d array on the device: ``ArrayOps.device_total``), or
        ``None`` when the batch's weights sum to zero (nothing to learn from
        it); ``weight_decay``: the L2 coefficient of each parameter, or None
        without penalty; ``angles``: an ndarray of shape (n_hidden_layers,),
        the angles in degrees between the rule's and back-propagation's
        hidden deltas for this batch, when ``track_alignment`` (else None).
    """
    ops = ws.ops
    n = X.shape[0]
    if sample_weight is None:
        weight_sum = n
    else:
        if weight_sum is None:
            weight_sum = ops.total(sample_weight)
        if weight_sum <= 0:
            return BatchResult(None, None, None)

    # Forward pass; ``inputs[l]`` is what layer l saw (after dropout).
    if ws.input_rate > 0:
        X = ops.mask_input(X, ws.input_dropout_mask(X))
    inputs = [X]
    activate = ACTIVATIONS[net.activation]
    for l, layer in enumerate(net.layers[:-1]):
        hidden = ws.hidden[l][:n, :]
        layer.forward(inputs[-1], hidden, training=True)
        if not _activated(layer):  # max pooling: no activation, no dropout
            inputs.append(hidden)
            continue
        activate(hidden, ops)
        if ws.hidden_rate > 0:
            mask = ws.dropout_mask(ws.masks[l][:n, :], ws.hidden_rate)
            hidden = ops.multiply(hidden, mask, out=ws.dropped[l][:n, :])
        inputs.append(hidden)
    output = net.layers[-1].forward(inputs[-1], ws.output[:n, :], training=True)

    # Loss and output error e = (P - Y) * w / sum(w): every output uses its
    # canonical loss, so dLoss/dA is P - Y.
    error = ws.error[:n, :]
    sample_loss = OUTPUTS[net.output](output, Y, error, ops)
    # Unit weights take the same arithmetic as no weights, bit for bit.
    if sample_weight is not None:
        column = ops.xp.reshape(sample_weight, (-1, 1))
        sample_loss *= sample_weight
        error *= column
    # A scalar on the device where there is one: reading it would wait for
    # the device at every batch (see ``ArrayOps.loss_accumulator``).
    loss = ops.device_total(sample_loss) / weight_sum
    error /= weight_sum
    row_weight = 1.0 / n if sample_weight is None else column / weight_sum
    l2 = alpha / weight_sum
    weight_decay = None
    if alpha:
        # Biases are not penalized, nor learned feedback unless its rule says.
        weight_decay = [l2 if decayed else 0.0 for decayed in ws.decayed]
        squares = ops.device_total_sum_squares(ws.regularized)
        loss += 0.5 * alpha * squares / weight_sum

    ctx = ws.context
    ctx.error, ctx.targets, ctx.row_weight, ctx.l2 = error, Y, row_weight, l2
    ctx.inputs = inputs
    rule = net.rule
    deltas = rule.hidden_deltas(ctx, net.rule_state)
    deltas.append(error)

    angles = None
    if track_alignment and net.n_layers > 1:
        exact = RULES["bp"].hidden_deltas(ctx, _NO_STATE)
        # Layers without parameters (pooling) may get no delta.
        angles = np.array(
            [np.nan if a is None else angle(a, b, ops) for a, b in zip(deltas, exact)]
        )

    grads = iter(ws.grads)
    all_layer_grads = []
    for layer, layer_input, delta in zip(net.layers, inputs, deltas):
        layer_grads = [next(grads) for _ in layer.params]
        if layer_grads:  # a layer without parameters (pooling) has none to compute
            layer.gradients(layer_input, delta, layer_grads)
        all_layer_grads.append(layer_grads)
    # Learned feedback's gradients follow the layers' in ``ws.grads``.
    rule.feedback_gradients(ctx, net.rule_state, all_layer_grads, list(grads))
    return BatchResult(loss, weight_decay, angles)

