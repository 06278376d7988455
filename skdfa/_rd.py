"""The random-diagonal (RD) classifier: DFAClassifier's engine with RD layers.

An RD layer (``_layers.RDLayer``) computes ``d2 * (R @ (d1 * x)) + b`` with a
fixed random ``R``, so its trainable parameters grow linearly with the width.
The estimator only chooses the layers and exposes their parameters; fitting,
prediction and validation are :class:`DFAClassifier`'s.
"""

from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import StrOptions

from ._classifier import _ClassifierMixin
from ._estimator_base import BaseDFA
from ._layers import RD_MATRICES, DenseLayer, RDLayer
from ._mlp import DFAClassifier


class RDClassifier(_ClassifierMixin, ClassifierMixin, BaseDFA):
    """Classifier of random-diagonal (RD) layers, trained by DFA or another rule.

    Each layer maps ``x`` to ``d2 * (R @ (d1 * x)) + b``: ``R`` is a fixed
    random matrix and only the diagonals ``d1``, ``d2`` and the bias ``b``
    learn, ``n_in + 2 * n_out`` parameters instead of a dense layer's
    ``n_in * n_out + n_out``. The learning rule brings each layer its delta
    (for DFA, the output error through a fixed random matrix); the layer turns
    it into gradients by exact back-propagation through its own ``R``. With no
    hidden layer the model is a single RD layer, the head of the 2017 stacked
    ensemble. Every parameter, method and fitted attribute not listed here is
    that of :class:`DFAClassifier`.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,) or int, default=(100,)
        Widths of the hidden RD layers; may be empty (``()``).
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden activation.
    rule : {"dfa", "fa", "bp", "drtp", "sdfa", "dkp"} or LearningRule, default="dfa"
        How the hidden layers get their deltas: direct feedback alignment,
        feedback alignment, back-propagation, direct random target
        projection, sign-DFA or direct Kolen-Pollack, or a
        :class:`~skdfa.rules.LearningRule` instance whose ``layer_kinds``
        include ``"rd"``. The output layer always gets its exact gradient. The rules that build their feedback from
        dense forward weights (``"usf"``, ``"frsf"``, ``"brsf"``, ``"kp"``)
        raise a ValueError when a hidden layer is followed by an RD layer.
    solver : {"adam", "sgd", "rmsprop", "lbfgs"}, default="adam"
        Optimizer; ``"lbfgs"`` (``rule="bp"`` only) as in
        :class:`DFAClassifier`.
    alpha : float, default=1e-4
        L2 penalty on the diagonals and dense weights (not the biases).
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive", "step"}, default="constant"
        Learning-rate schedule of ``solver="sgd"`` (ignored by the others).
    learning_rate_init : float, default=1e-2
        Initial learning rate. Ten times :class:`DFAClassifier`'s: an RD
        layer trains only its two diagonals, and at 1e-3 it learns several
        times slower (digits, defaults otherwise: 0.55 test accuracy after
        200 epochs at 1e-3, 0.74 at 1e-2).
    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.
    step_epochs : array-like of int, default=(50, 75)
        With ``learning_rate="step"``: the epochs after which the learning
        rate is multiplied by ``step_factor`` (torch's ``MultiStepLR``
        milestones), counted over every epoch the optimizer has run,
        ``warm_start`` and ``partial_fit`` included.
    step_factor : float, default=0.1
        The factor of the ``"step"`` schedule.
    max_iter : int, default=200
        Maximum number of epochs (``"lbfgs"``: of iterations).
    shuffle : bool, default=True
        Whether to shuffle samples at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the matrices ``R``, the initial parameters, shuffling, dropout,
        the validation split and (unless ``feedback_random_state`` is set) the
        feedback matrices.
    tol : float, default=1e-4
        Minimal improvement that resets the ``n_iter_no_change`` counter.
    verbose : bool or int, default=False
        Print one line per epoch.
    warm_start : bool, default=False
        Continue from the previous fit; changed settings apply as described
        in :class:`DFAClassifier` (``output_layer`` and ``rd_matrix`` cannot
        change).
    momentum : float, default=0.9
        Momentum of ``"sgd"``.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``"sgd"``.
    early_stopping : bool, default=False
        Stop on a held-out validation accuracy and restore the best weights.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Adam's and RMSprop's numerical-stability term.
    rho : float, default=0.9
        RMSprop's decay rate.
    n_iter_no_change : int or np.inf, default=10
        Epochs without ``tol`` improvement before stopping; ``np.inf`` never
        stops on ``tol``. Ignored by ``"lbfgs"``.
    max_fun : int, default=15000
        ``solver="lbfgs"`` only: maximum number of loss evaluations.
    feedback_distribution : {"uniform", "gaussian"}, default="uniform"
        Distribution of the feedback matrices' entries.
    feedback_scale : float, "auto" or "glorot", default="auto"
        Scale of the feedback entries; ``"auto"`` is ``1 / sqrt(width)``,
        ``"glorot"`` Glorot's variance of each feedback matrix.
    feedback_random_state : int, RandomState instance or None, default=None
        Seeds the feedback matrices alone.
    weight_init : {"glorot", "glorot_zero_bias", "zeros", "normal"}, \
            default="glorot"
        Initial parameters of each RD layer: ``"glorot"`` sets ``d1 = 1`` and
        a constant ``d2`` that gives the effective weights ``d2_i R_ij d1_j``
        Glorot's variance, with Glorot-uniform biases (zero biases for
        ``"glorot_zero_bias"``); ``"zeros"`` sets
        ``d1 = 1``, ``d2 = 0`` and zero biases (the layer's map starts at zero,
        DFA learns from it, back-propagation does not); ``"normal"`` draws
        standard normal diagonals, with zero biases. A dense output layer is
        initialised as in :class:`DFAClassifier`.
    dropout : float or (float, float), default=0.0
        Hidden dropout rate, or ``(input_rate, hidden_rate)``.
    track_alignment : bool or int, default=False
        Record alignment angles every ``track_alignment`` updates.
    feedback_decay : float, default=1e-3
        Decay of the learnt feedback of ``"dkp"`` (see :class:`DFAClassifier`).
    output_activation : {"auto", "sigmoid"}, default="auto"
        ``"auto"``: softmax for multiclass, logistic for binary and multilabel
        targets; ``"sigmoid"``: independent logistic outputs.
    output_layer : {"rd", "dense"}, default="rd"
        Type of the output layer: an RD layer, or a dense layer (more
        parameters: ``n_last * n_outputs``).
    rd_matrix : {"gaussian", "dct"}, default="gaussian"
        The fixed matrix ``R`` of every RD layer. ``"gaussian"``: dense, with
        N(0, 1 / n_in) entries (the original; memory and time grow with
        ``n_in * n_out``). ``"dct"``: random signs, the orthonormal DCT of the
        input zero-padded to ``m = max(n_in, n_out)`` and ``n_out`` of the ``m``
        coefficients chosen at random, scaled by ``sqrt(m / n_in)`` so that
        outputs have the variance of ``"gaussian"``; applied in
        ``O(m log m)`` per sample without forming ``R``. Sparse input is
        densified one batch at a time for ``"dct"``.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    diagonals_ : list of tuple of ndarray
        ``(d1, d2)`` of each RD layer, from the input: ``d1`` of shape
        (n_units_i,) and ``d2`` of shape (n_units_{i+1},). The output layer's
        pair is last when ``output_layer="rd"``. Like ``intercepts_`` and
        ``output_coef_``, it is the model: arrays assigned to it are used by
        predictions and further training.
    intercepts_ : list of ndarray
        The bias of each layer, output layer included.
    output_coef_ : ndarray of shape (n_units_last, n_outputs) or None
        Weights of the dense output layer; None when ``output_layer="rd"``.
    feedback_ : list of ndarray
        Feedback matrices, one per hidden layer (empty for ``"bp"``), at the
        end of training.
    n_params_ : int
        Number of trainable parameters: ``n_in + 2 * n_out`` per RD layer,
        ``(n_in + 1) * n_out`` for a dense output layer.
    loss_ : float
        Loss at the last epoch (``"lbfgs"``: at the solution).
    loss_curve_ : list of float
        Loss at each epoch (stochastic solvers only, as the next three).
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float or None
        Validation accuracy per epoch (early stopping only).
    best_validation_score_ : float or None
        Best validation accuracy (early stopping only).
    alignment_ : ndarray of shape (n_records, n_hidden_layers)
        Alignment angles in degrees.
    weight_alignment_ : ndarray of shape (n_records, n_hidden_layers)
        Angles in degrees between the feedback and the forward weights (see
        :class:`DFAClassifier`).
    alignment_steps_ : ndarray of shape (n_records,)
        Update count of each ``alignment_`` row.
    n_iter_ : int
        Epochs (``"lbfgs"``: iterations) run by the last call to fit.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when X has string column names.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Output activation (``"softmax"`` or ``"logistic"``).

    See Also
    --------
    DFAClassifier : The same classifier with dense layers.

    References
    ----------
    Moczulski, M., Denil, M., Appleyard, J. and de Freitas, N. (2016). ACDC: A
    Structured Efficient Linear Layer. ICLR.

    Nøkland, A. (2016). Direct Feedback Alignment Provides Learning in Deep
    Neural Networks. NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from skdfa import RDClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X / 16, y, stratify=y, random_state=0)
    >>> clf = RDClassifier(hidden_layer_sizes=(512,), rd_matrix="dct",
    ...                    learning_rate_init=0.03, max_iter=20,
    ...                    random_state=0).fit(X_train, y_train)
    >>> clf.score(X_test, y_test) > 0.9
    True
    >>> clf.n_params_  # (64 + 2 * 512) + (512 + 2 * 10)
    1620
    """

    _parameter_constraints: dict = {
        **DFAClassifier._parameter_constraints,
        "output_layer": [StrOptions({"rd", "dense"})],
        "rd_matrix": [StrOptions(set(RD_MATRICES))],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="tanh",
        rule="dfa",
        *,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-2,
        power_t=0.5,
        step_epochs=(50, 75),
        step_factor=0.1,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        rho=0.9,
        n_iter_no_change=10,
        max_fun=15000,
        feedback_distribution="uniform",
        feedback_scale="auto",
        feedback_random_state=None,
        weight_init="glorot",
        dropout=0.0,
        track_alignment=False,
        feedback_decay=1e-3,
        output_activation="auto",
        output_layer="rd",
        rd_matrix="gaussian",
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            rule=rule,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            step_epochs=step_epochs,
            step_factor=step_factor,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            rho=rho,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            feedback_distribution=feedback_distribution,
            feedback_scale=feedback_scale,
            feedback_random_state=feedback_random_state,
            weight_init=weight_init,
            dropout=dropout,
            track_alignment=track_alignment,
            feedback_decay=feedback_decay,
        )
        self.output_activation = output_activation
        self.output_layer = output_layer
        self.rd_matrix = rd_matrix

    def _make_layers(self, units):
        layers = [
            RDLayer(n_in, n_out, self.rd_matrix)
            for n_in, n_out in zip(units[:-2], units[1:-1])
        ]
        if self.output_layer == "rd":
            layers.append(RDLayer(units[-2], units[-1], self.rd_matrix))
        else:
            layers.append(DenseLayer(units[-2], units[-1]))
        return layers

    _structure_params = (*BaseDFA._structure_params, "output_layer", "rd_matrix")

    def _exposed_params(self):
        exposed = []
        for i, intercept in enumerate(self.intercepts_):
            if i < len(self.diagonals_):
                d1, d2 = self.diagonals_[i]
                pairs = [(f"diagonals_[{i}][0]", d1), (f"diagonals_[{i}][1]", d2)]
            else:
                pairs = [("output_coef_", self.output_coef_)]
            exposed.append([*pairs, (f"intercepts_[{i}]", intercept)])
        return exposed

    def _expose_params(self):
        layers = self._fit_state.network.layers
        self.diagonals_ = [
            (layer.d1, layer.d2) for layer in layers if isinstance(layer, RDLayer)
        ]
        self.intercepts_ = [layer.intercept for layer in layers]
        self.output_coef_ = layers[-1].coef if isinstance(layers[-1], DenseLayer) else None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The DCT runs on numpy and torch only (torch.fft), not in every
        # array API namespace; "gaussian" runs everywhere.
        tags.array_api_support = self.rd_matrix == "gaussian"
        return tags
