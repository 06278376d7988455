"""The direct rules: a signal projected from the output to every layer.

Each hidden layer ``l`` that has parameters gets ``delta_l = (s @ B_l) *
f'(a_l)``, where ``s`` is a signal known at the output and ``B_l`` a fixed
(or learnt) matrix; no error passes back through the forward weights:

- ``"dfa"``:  ``s = e``, the output error (direct feedback alignment);
- ``"drtp"``: ``s = y``, the weighted targets (direct random target projection);
- ``"sdfa"``: ``s = sign(e) * w`` (sign-DFA);
- ``"dkp"``: ``s = e``, with ``B_l`` learnt (direct Kolen-Pollack).

:class:`DirectRule` is the family's public base: the engine, not the rule,
decides which layers receive a projection and where it lands below a
convolution (``conv_feedback``); a variant says only what it projects
(:meth:`DirectRule.signal`) or how its feedback is drawn
(:meth:`~LearningRule.draw_feedback`).
"""

import numpy as np

from ._rule_api import _CONV_KINDS, LearningRule, RuleState, angle

# Where the projection enters below a convolution (see DirectRule).
CONV_FEEDBACK_FORMS = ("map", "pooled", "kernel")


class DirectRule(LearningRule):
    """Base of the direct rules: a signal known at the output reaches every
    hidden layer that has parameters through its own feedback matrix.

    ``delta_l = (signal @ B_l) * f'(a_l)`` for each hidden layer ``l`` with
    parameters; layers without (pooling) receive no projection and no draw.
    Below a convolution the signal can enter in three places, which
    ``conv_feedback`` chooses; in a network without convolutions (or where a
    dense layer comes next) all three are the same, with the same draws, and
    train identically:

    - ``"map"``: every hidden layer with parameters gets ``(s @ B_l) *
      f'(a_l)`` at its own output, a convolution at its output map before
      pooling, through a matrix ``B_l`` of shape ``(n_outputs, C_l * H_l *
      W_l)``. Pooling layers receive nothing.
    - ``"pooled"`` (Nøkland's own code, ``anokland/dfa-torch``: its
      ``Models/conv.lua`` places ``ErrorFeedback`` after each block's
      pooling, and ``Models/ErrorFeedback.lua`` replaces the gradient there
      by ``gradOutput @ B``): the projection lands on the output of the
      pooling that follows a layer, through ``B_l`` of shape ``(n_outputs, C_l
      * H'_l * W'_l)`` over the *pooled* map, and is sent back through the
      pooling (to each window's maximum) before ``f'(a_l)``.
    - ``"kernel"`` (biotorch's ``layers/dfa``, Sanfiz and Akrout, 2021):
      every layer with parameters replaces the gradient with respect to its
      input by a projection of ``s``. Hidden layer ``l`` thus receives the
      signal of the next layer with parameters above it, at that layer's
      input, and passes it back through the pooling in between before
      ``f'(a_l)``. Above a dense layer the signal is ``s @ B`` with ``B`` of
      shape ``(n_outputs, n_in)``. Above a convolution of kernel ``(C_out,
      C_in, kh, kw)`` it is that convolution's input gradient, through a
      random kernel ``K`` of shape ``(n_outputs, C_in, kh, kw)``, of ``s``
      repeated at every position of its output map. That map is spatially
      constant, so the signal is ``s @ D`` with a fixed ``(n_outputs, C_in *
      H_in * W_in)`` matrix ``D``, built once from ``K``. ``K`` is drawn with
      the kernel's fan-in ``C_in kh kw`` as receiving width, as the
      feedback-alignment rules' kernels; ``feedback_scale="glorot"`` draws it
      as biotorch does.

    All blocks (``B_l`` or ``D``) are column blocks of one matrix, so every
    hidden layer's projection is one matrix product per batch.

    A variant overrides one public hook:

    - :meth:`signal`: what the feedback projects (the output error here);
    - :meth:`~LearningRule.draw_feedback`: how each ``B_l`` (or ``K``) is
      drawn;
    - ``learned_feedback = True`` (a class attribute): the optimizer moves the
      feedback with the weights, from what :meth:`feedback_gradients` writes
      into one matrix of all the blocks (direct Kolen-Pollack).

    Parameters
    ----------
    conv_feedback : {"map", "pooled", "kernel"}, default="kernel"
        Where the signal enters below a convolution. ``"kernel"`` trained
        DFA's convolutions best in the measurements of the user guide
        (:ref:`conv-dfa-forms`); ``"map"`` was the default before 0.2.

    Attributes
    ----------
    learned_feedback : bool
        Whether the feedback matrix is learnt (kept in ``state.learned``) or
        fixed (``state.fixed``).

    Examples
    --------
    DFA with its feedback drawn ``scale`` times larger, in a dense and in a
    convolutional network (with ``solver="sgd"``: Adam divides every step by
    the gradient's own size, so a constant scale of the feedback changes
    nothing under ``"adam"``):

    >>> from sklearn.datasets import load_digits
    >>> from skdfa import ConvDFAClassifier, DFAClassifier
    >>> from skdfa.rules import DirectFeedbackAlignment
    >>> class ScaledDFA(DirectFeedbackAlignment):
    ...     "DFA whose feedback is drawn `scale` times larger."
    ...     def __init__(self, scale=1.0, conv_feedback="kernel"):
    ...         super().__init__(conv_feedback)
    ...         self.scale = scale
    ...     def draw_feedback(self, sample, shape, receiving_width):
    ...         return self.scale * sample(shape, receiving_width)
    >>> X, y = load_digits(return_X_y=True)
    >>> dense = DFAClassifier((32, 32), rule=ScaledDFA(3.0), solver="sgd",
    ...                       learning_rate_init=0.05, max_iter=30, random_state=0)
    >>> bool(dense.fit(X / 16, y).score(X / 16, y) > 0.95)
    True
    >>> conv = ConvDFAClassifier(conv_layers=((4, 3),), pool_size=(2,), hidden_layer_sizes=(16,),
    ...                          rule=ScaledDFA(3.0, "pooled"), max_iter=2,
    ...                          random_state=0).fit(X / 16, y)
    >>> [B.shape for B in conv.feedback_]
    [(10, 36), (10, 16)]
    """

    random_feedback = True
    layer_kinds = frozenset({"dense", "rd"}) | _CONV_KINDS
    learned_feedback = False
    # The default for subclasses of users whose ``__init__`` does not call this one.
    conv_feedback = "kernel"

    def __init__(self, conv_feedback="kernel"):
        self.conv_feedback = conv_feedback

    def checked_layers(self, layers):
        # The layers that receive a projection, and under "pooled" and
        # "kernel" those it passes back through.
        if self.conv_feedback == "map":
            return [layer for layer in layers[:-1] if layer.n_params]
        return layers[:-1]

    def error_signal_macs(self, layers):
        # One product s @ B per block, as wide as where it lands (under
        # "kernel" the constant-map projection D is built once, at the first
        # fit, not per sample); twice that where the feedback is learnt (its
        # gradient e.T @ h_l).
        projection = layers[-1].n_out * sum(
            layers[entry].n_out for _, entry, _ in self._entries(layers)
        )
        return 2 * projection if self.learned_feedback else projection

    def signal(self, ctx):
        """What the feedback projects; a public hook for variants.

        Parameters
        ----------
        ctx : DeltaContext
            The batch, after the forward pass.

        Returns
        -------
        signal : array of shape (n_samples, n_outputs)
            Here the output error ``ctx.error`` (read it, do not write to it).
        """
        return ctx.error

    def _entries(self, layers):
        """Where each hidden layer with parameters receives its projection.

        ``(l, entry, through_kernel)`` per hidden layer ``l`` with parameters,
        first layer first: the projection lands on layer ``entry``'s output
        (``l`` itself for ``"map"``; for ``"pooled"`` and ``"kernel"``, the
        layer under the next one with parameters), through that layer's
        feedback kernel when ``through_kernel``.
        """
        if self.conv_feedback not in CONV_FEEDBACK_FORMS:
            raise ValueError(
                f"{type(self).__name__}: conv_feedback must be one of "
                f"{', '.join(map(repr, CONV_FEEDBACK_FORMS))}; got {self.conv_feedback!r}."
            )
        past_pooling = self.conv_feedback != "map"
        kernel_form = self.conv_feedback == "kernel"
        entries = []
        for l, layer in enumerate(layers[:-1]):
            if not layer.n_params:
                continue
            entry = l
            while past_pooling and not layers[entry + 1].n_params:
                entry += 1
            # Above a layer that projects a feedback kernel (a convolution).
            through_kernel = kernel_form and hasattr(layers[entry + 1], "constant_map_projection")
            entries.append((l, entry, through_kernel))
        return entries

    def init_state(self, layers, sample):
        n_outputs = layers[-1].n_out
        blocks, kernels = [], []
        for _, entry, through_kernel in self._entries(layers):
            if through_kernel:
                conv = layers[entry + 1]
                kernel = self.draw_feedback(
                    sample, (n_outputs, *conv.kernel_shape[1:]), conv.feedback_width
                )
                kernels.append(kernel)
                blocks.append(conv.constant_map_projection(kernel))
            else:
                width = layers[entry].n_out
                blocks.append(self.draw_feedback(sample, (n_outputs, width), width))
        if not blocks:
            return RuleState()
        # The kernels only for feedback_: the projections read D.
        extras = {"kernels": kernels} if kernels else {}
        slot = "learned" if self.learned_feedback else "fixed"
        return RuleState(**{slot: [np.hstack(blocks)]}, extras=extras)

    def _matrix(self, state):
        matrices = state.learned if self.learned_feedback else state.fixed
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

    def hidden_deltas(self, ctx, state):
        deltas = [None] * (len(ctx.layers) - 1)
        feedback = self._matrix(state)
        if feedback is None:
            return deltas
        projected = ctx.ops.matmul(
            self.signal(ctx), feedback, out=ctx.buffer("projection", feedback.shape[1])
        )
        start = 0
        for l, entry, _ in self._entries(ctx.layers):
            width = ctx.layers[entry].n_out
            signal = projected[:, start : start + width]
            start += width
            # "pooled" and "kernel": back through the pooling between layer l
            # and the next layer with parameters, to each window's maximum.
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



class DirectFeedbackAlignment(DirectRule):
    """Direct feedback alignment (Nøkland, 2016): the output error reaches every
    hidden layer directly through fixed random feedback,
    ``delta_l = (e @ B_l) * f'(a_l)``.

    Where the error enters below a convolution is ``conv_feedback``'s choice
    (:class:`DirectRule`): at each layer's own map (``"map"``), at the map
    after its pooling as in Nøkland's code (``"pooled"``), or through the
    next convolution's random kernel as in biotorch (``"kernel"``).

    Parameters
    ----------
    conv_feedback : {"map", "pooled", "kernel"}, default="kernel"
        Where the error enters below a convolution.

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


class DirectRandomTargetProjection(DirectRule):
    """Direct random target projection (Frenkel et al., 2021): like DFA, but
    projects the targets instead of the error, so the hidden layers' updates
    need no output (they can be computed before the forward pass ends).

    Parameters
    ----------
    conv_feedback : {"map", "pooled", "kernel"}, default="kernel"
        Where the targets enter below a convolution (:class:`DirectRule`).

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

    def signal(self, ctx):
        # A single binary column is coded -1/+1, the difference of its two
        # one-hot columns. Coded 0/1, the negative class would send nothing,
        # and every update would push all samples the same way, never apart.
        Y = ctx.targets
        if Y.shape[1] == 1 and ctx.output_activation == "logistic":
            Y = 2 * Y - 1
        return Y * ctx.row_weight


class SignDirectFeedbackAlignment(DirectRule):
    """Sign-DFA (Frenkel et al., 2021; the ``"sDFA"`` mode of their DRTP code,
    ``function.py``): like DFA, but projects the sign of each sample's error,
    weighted like the error, ``sign(e) * w``; only the output layer sees the
    error's magnitude. With softmax or logistic outputs and 0/1 targets,
    ``sign(P - Y) = 1 - 2 Y``: like DRTP's, the signal depends on the target
    alone, and it never shrinks as the network learns.

    Parameters
    ----------
    conv_feedback : {"map", "pooled", "kernel"}, default="kernel"
        Where the error's sign enters below a convolution (:class:`DirectRule`).

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

    def signal(self, ctx):
        signal = ctx.ops.xp.sign(ctx.error)
        signal *= ctx.row_weight
        return signal


class DirectKolenPollack(DirectRule):
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
        ``l``'s own output, so the ``"pooled"`` and ``"kernel"`` forms of
        :class:`DirectRule`, which have none there, raise a ValueError at
        fit.

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
    learned_feedback = True
    conv_feedback = "map"

    def __init__(self, conv_feedback="map"):
        super().__init__(conv_feedback)

    def init_state(self, layers, sample):
        if self.conv_feedback != "map":
            # Its gradient e.T @ h_l makes B_l a forward connection from
            # layer l's own output: the "map" form only.
            raise ValueError(
                "DirectKolenPollack learns each B_l as a direct connection from "
                "hidden layer l's output to the output, so it has only "
                f"conv_feedback='map'; got conv_feedback={self.conv_feedback!r}."
            )
        return super().init_state(layers, sample)

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
