"""Multi-layer perceptron estimators trained by DFA and the other rules.

:class:`DFAClassifier` and :class:`DFARegressor` declare their parameters and
dense layers; everything else is :class:`~skdfa._estimator_base.BaseDFA`'s
(and, for the classifier, ``_classifier.py``'s).
"""


import numpy as np
from sklearn.base import (
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
)
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if

from ._base import ACTIVATIONS
from ._classifier import _ClassifierMixin
from ._estimator_base import BaseDFA, _ravel_single_column


class DFAClassifier(_ClassifierMixin, ClassifierMixin, BaseDFA):
    """Multi-layer perceptron classifier trained by Direct Feedback Alignment.

    Each hidden layer ``l`` learns from the output error ``e`` projected
    through its own fixed random matrix: ``delta_l = (e @ B_l) * f'(a_l)``
    (Nøkland, 2016). ``rule`` switches to any of ten rules in the same
    engine, back-propagation included (see :ref:`choosing_rule`).
    Every parameter and fitted attribute of
    :class:`sklearn.neural_network.MLPClassifier` is here, with the
    differences listed in :ref:`differences` (``activation`` defaults to
    ``"tanh"``; ``solver="lbfgs"`` needs ``rule="bp"``).

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,) or int, default=(100,)
        Widths of the hidden layers.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden activation.
    rule : {"dfa", "fa", "bp", "drtp", "sdfa", "usf", "frsf", "brsf", "kp", "dkp"} \
            or LearningRule, default="dfa"
        Learning rule of the hidden layers: direct feedback alignment, feedback
        alignment, back-propagation, direct random target projection, sign-DFA,
        the sign-symmetry rules (uniform, fixed random or batchwise random
        magnitudes), Kolen-Pollack, or direct Kolen-Pollack (see
        :ref:`dfa` for their equations), or an instance of a
        :class:`~skdfa.rules.LearningRule` subclass, yours included (see
        :ref:`custom_rules`). The output layer always gets its exact gradient.
    solver : {"adam", "sgd", "rmsprop", "lbfgs"}, default="adam"
        Optimizer. ``"lbfgs"`` is scipy's full-batch L-BFGS on the exact
        loss and its gradient, as in
        :class:`~sklearn.neural_network.MLPClassifier`; it needs
        ``rule="bp"`` (the other rules' updates are not the gradient of a
        loss, and it raises a ValueError for them) and ``dropout=0``, stops
        after ``max_iter`` iterations or ``max_fun`` loss evaluations or when
        the gradient falls below ``tol``, ignores ``early_stopping``, and has
        no :meth:`partial_fit`. It suits small data sets.
    alpha : float, default=1e-4
        L2 penalty on the weights (not the biases).
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive", "step"}, default="constant"
        Learning-rate schedule of ``solver="sgd"``; Adam and RMSprop ignore it
        (as in :class:`~sklearn.neural_network.MLPClassifier`).
    learning_rate_init : float, default=1e-3
        Initial learning rate.
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
        Seeds the initial weights, shuffling, dropout, the validation split and
        (unless ``feedback_random_state`` is set) the feedback matrices.
    tol : float, default=1e-4
        Minimal improvement of the loss (or validation score) that resets the
        ``n_iter_no_change`` counter; for ``"lbfgs"``, the gradient tolerance
        (scipy's ``gtol``).
    verbose : bool or int, default=False
        Print one line per epoch: epoch, loss, validation score, mean alignment
        angle when tracked, seconds.
    warm_start : bool, default=False
        Continue from the previous fit: weights, feedback, optimizer state and
        random streams are kept, so fitting twice for ``k`` epochs is the same
        as fitting once for ``2k``. Settings changed in between apply (as in
        :class:`~sklearn.neural_network.MLPClassifier`): a new activation is
        used, a changed optimizer setting builds a new optimizer, and a changed
        rule or feedback setting redraws the feedback as a new fit would. A
        change of the network's shape (``hidden_layer_sizes``,
        ``output_activation``) raises a ValueError. The same holds for
        :meth:`partial_fit`.
    momentum : float, default=0.9
        Momentum of ``"sgd"``.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``"sgd"``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its score stops
        improving and restore the best weights.
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
        Half-width (uniform) or standard deviation (gaussian) of the feedback
        entries; ``"auto"`` is ``1 / sqrt(width)`` of the layer receiving the
        feedback; ``"glorot"`` gives each feedback matrix Glorot's variance
        ``2 / (n_rows + n_columns)`` (the half-width ``sqrt(6 / (n_rows +
        n_columns))`` if uniform), as biotorch draws its backward weights.
    feedback_random_state : int, RandomState instance or None, default=None
        Seeds the feedback matrices alone; ``None`` derives a seed from
        ``random_state``. Vary it to change the feedback and keep the initial
        weights.
    weight_init : {"glorot", "glorot_zero_bias", "zeros", "normal"}, \
            default="glorot"
        Initial weights: Glorot uniform with Glorot-uniform biases (as
        scikit-learn's MLP), the same weights with zero biases (Keras's and
        biotorch's start), zeros (DFA learns from zero weights,
        back-propagation does not), or standard normal (the 2017 notebooks).
    dropout : float or (float, float), default=0.0
        Dropout rate of the hidden layers, or ``(input_rate, hidden_rate)``.
    track_alignment : bool or int, default=False
        Every ``track_alignment`` updates (10 for ``True``), record each hidden
        layer's angle between the rule's delta and back-propagation's delta
        for the same batch, in ``alignment_``, and the angle between the
        feedback the layer receives and the forward weights it stands in for,
        in ``weight_alignment_``. Never changes the training.
    feedback_decay : float, default=1e-3
        For the rules that learn their feedback, ``"kp"`` and ``"dkp"``:
        after every update, the learnt feedback (and, for ``"kp"``, the
        forward weights paired with it) is multiplied by
        ``1 - feedback_decay``. The optimizer ``solver`` moves the feedback
        like the weights. Ignored by the other rules.
    output_activation : {"auto", "sigmoid"}, default="auto"
        ``"auto"``: softmax and log-loss for multiclass, logistic for binary and
        multilabel targets. ``"sigmoid"``: independent logistic outputs with
        binary cross-entropy on one-hot targets (the original 2017 setup).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    coefs_ : list of ndarray
        ``coefs_[i]`` of shape (n_units_i, n_units_{i+1}): the weights of layer i.
        Like ``intercepts_``, it is the model: arrays assigned to it are
        used by predictions and further training.
    intercepts_ : list of ndarray
        The biases of each layer.
    feedback_ : list of ndarray
        Feedback matrices, one per hidden layer (empty for ``"bp"``), as they
        are at the end of training: ``B_l`` of shape (n_outputs, width_l) for
        the direct rules (``"dfa"``, ``"drtp"``, ``"sdfa"``, ``"dkp"``),
        shaped like ``coefs_[l + 1].T`` for the others.
    n_params_ : int
        Number of trainable parameters.
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
        Alignment angles in degrees (see ``track_alignment``); NaN where a
        delta is zero.
    weight_alignment_ : ndarray of shape (n_records, n_hidden_layers)
        Angles in degrees between each hidden layer's feedback and the forward
        path it stands in for, taken with ``alignment_``: ``B_{l+1}`` against
        ``coefs_[l + 1].T`` for the layer-by-layer rules, ``B_l`` against the
        product of the weights above the layer, transposed, for the direct
        rules; 0 for ``"bp"``.
    alignment_steps_ : ndarray of shape (n_records,)
        The update count at which each ``alignment_`` row was taken.
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
    DFARegressor : The regressor.
    RDClassifier : The same classifier with RD layers.
    StackingDFA : Many DFA networks and a head on their linear outputs.

    References
    ----------
    Nøkland, A. (2016). Direct Feedback Alignment Provides Learning in Deep
    Neural Networks. NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from skdfa import DFAClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X / 16, y, stratify=y, random_state=0)
    >>> clf = DFAClassifier(hidden_layer_sizes=(128,), max_iter=30,
    ...                     random_state=0).fit(X_train, y_train)
    >>> clf.score(X_test, y_test) > 0.9
    True
    >>> clf.transform(X_test[:2]).shape
    (2, 10)
    """

    _parameter_constraints: dict = {
        **BaseDFA._parameter_constraints,
        "output_activation": [StrOptions({"auto", "sigmoid"})],
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
        learning_rate_init=1e-3,
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




class DFARegressor(RegressorMixin, BaseDFA):
    """Multi-layer perceptron regressor trained by Direct Feedback Alignment.

    Identity outputs and the squared error, or exponential outputs and the
    Poisson deviance (``loss="poisson"``); every other parameter and fitted
    attribute is that of :class:`DFAClassifier`. Every parameter and fitted
    attribute of :class:`sklearn.neural_network.MLPRegressor` is here, with
    the differences listed in :ref:`differences`.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,) or int, default=(100,)
        Widths of the hidden layers.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden activation.
    rule : {"dfa", "fa", "bp", "drtp", "sdfa", "usf", "frsf", "brsf", "kp", "dkp"} \
            or LearningRule, default="dfa"
        Learning rule of the hidden layers, a name or a
        :class:`~skdfa.rules.LearningRule` instance (see :class:`DFAClassifier`).
    loss : {"squared_error", "poisson"}, default="squared_error"
        Training loss, as in :class:`~sklearn.neural_network.MLPRegressor`:
        half the squared error with identity outputs, or half the Poisson
        deviance with exponential outputs (the log link; ``y`` must be
        non-negative, and :meth:`predict` returns ``exp`` of the linear
        outputs that :meth:`transform` returns).
    solver : {"adam", "sgd", "rmsprop", "lbfgs"}, default="adam"
        Optimizer; ``"lbfgs"`` (``rule="bp"`` only) as in
        :class:`DFAClassifier`.
    alpha : float, default=1e-4
        L2 penalty on the weights.
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive", "step"}, default="constant"
        Learning-rate schedule of ``solver="sgd"`` (ignored by the others).
    learning_rate_init : float, default=1e-3
        Initial learning rate.
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
        Seeds the weights, shuffling, dropout, validation split and (by
        default) the feedback.
    tol : float, default=1e-4
        Tolerance of the stopping criterion (``"lbfgs"``: of the gradient).
    verbose : bool or int, default=False
        Print one line per epoch.
    warm_start : bool, default=False
        Continue from the previous fit; changed settings apply as described
        in :class:`DFAClassifier`.
    momentum : float, default=0.9
        Momentum of ``"sgd"``.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``"sgd"``.
    early_stopping : bool, default=False
        Stop on a held-out validation score (R^2) and restore the best weights.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Numerical-stability term of Adam and RMSprop.
    rho : float, default=0.9
        RMSprop's decay rate.
    n_iter_no_change : int or np.inf, default=10
        Epochs without ``tol`` improvement before stopping; ``np.inf`` never
        stops on ``tol``. Ignored by ``"lbfgs"``.
    max_fun : int, default=15000
        ``solver="lbfgs"`` only: maximum number of loss evaluations.
    feedback_distribution : {"uniform", "gaussian"}, default="uniform"
        Distribution of the feedback entries.
    feedback_scale : float, "auto" or "glorot", default="auto"
        Scale of the feedback entries; ``"auto"`` is ``1 / sqrt(width)``,
        ``"glorot"`` Glorot's variance of each feedback matrix.
    feedback_random_state : int, RandomState instance or None, default=None
        Seeds the feedback alone.
    weight_init : {"glorot", "glorot_zero_bias", "zeros", "normal"}, \
            default="glorot"
        Initial weights (see :class:`DFAClassifier`).
    dropout : float or (float, float), default=0.0
        Hidden dropout rate, or ``(input_rate, hidden_rate)``.
    track_alignment : bool or int, default=False
        Record alignment angles every ``track_alignment`` updates.
    feedback_decay : float, default=1e-3
        Decay of the learnt feedback of ``"kp"`` and ``"dkp"`` (see
        :class:`DFAClassifier`).

    Attributes
    ----------
    coefs_ : list of ndarray
        Weights of each layer.
    intercepts_ : list of ndarray
        Biases of each layer.
    feedback_ : list of ndarray
        Feedback matrices, one per hidden layer, at the end of training.
    n_params_ : int
        Number of trainable parameters.
    loss_ : float
        Loss at the last epoch (``"lbfgs"``: at the solution), plus the L2
        penalty, as :class:`~sklearn.neural_network.MLPRegressor` reports it:
        half the squared error averaged over the outputs, or half the Poisson
        deviance summed over them.
    loss_curve_ : list of float
        Loss at each epoch (stochastic solvers only, as the next three).
    best_loss_ : float or None
        Lowest training loss.
    validation_scores_ : list of float or None
        Validation R^2 per epoch (early stopping only).
    best_validation_score_ : float or None
        Best validation R^2.
    alignment_ : ndarray of shape (n_records, n_hidden_layers)
        Alignment angles in degrees.
    weight_alignment_ : ndarray of shape (n_records, n_hidden_layers)
        Angles in degrees between the feedback and the forward weights.
    alignment_steps_ : ndarray of shape (n_records,)
        Update count of each alignment record.
    n_iter_ : int
        Epochs (``"lbfgs"``: iterations) run by the last fit.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when X has string column names.
    n_layers_ : int
        Number of layers.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        ``"identity"``, or ``"exp"`` for ``loss="poisson"``.

    See Also
    --------
    DFAClassifier : The classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from skdfa import DFARegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(500, 3))
    >>> y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    >>> reg = DFARegressor(hidden_layer_sizes=(64,), learning_rate_init=1e-2,
    ...                    max_iter=200, tol=0, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
    """

    _y_numeric = True

    _parameter_constraints: dict = {
        **BaseDFA._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    # The loss fixes the output activation: warm starts cannot change it.
    _structure_params = (*BaseDFA._structure_params, "loss")

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="tanh",
        rule="dfa",
        *,
        loss="squared_error",
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
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
        self.loss = loss

    def _encode_targets(self, y, incremental, first_pass):
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if self.loss == "poisson" and np.any(Y < 0):
            raise ValueError(
                "Some value(s) of y are out of the valid range of the loss "
                "'poisson': it needs y >= 0 (counts, rates or other non-negative "
                f"values); y has {np.count_nonzero(Y < 0)} negative value(s). Use "
                "loss='squared_error' for targets of any sign."
            )
        if not first_pass and Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} outputs, but {type(self).__name__} was fitted "
                f"with {self.n_outputs_}."
            )
        return Y

    def _output_activation(self):
        # The canonical link of each loss: its error at the linear outputs is P - Y.
        return "exp" if self.loss == "poisson" else "identity"

    def _validation_score(self, net, X, Y, sample_weight):
        to_numpy = net.ops.to_numpy
        return r2_score(
            to_numpy(Y),
            to_numpy(net.predict_output(X)),
            sample_weight=None if sample_weight is None else to_numpy(sample_weight),
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict with the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted values: the linear outputs (:meth:`transform`), or
            their exponential for ``loss="poisson"``.
        """
        outputs = self._decision(X, "predict")
        ops = self._fit_state.network.ops
        ACTIVATIONS[self.out_activation_](outputs, ops)
        return _ravel_single_column(outputs, ops)
