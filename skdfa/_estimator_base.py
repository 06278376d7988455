"""What every skdfa network estimator shares: :class:`BaseDFA`.

It declares and validates the parameters shared by the MLP, RD and
convolutional estimators, builds the network (``_network.py``) in one call,
hands it to the training loop (``_training.py``) or to L-BFGS
(``_lbfgs.py``), carries it over between fits (``warm_start``,
``partial_fit``) and exposes the fitted attributes. The estimators
themselves (``_mlp.py``, ``_rd.py``, ``_conv_estimator.py``) only choose
their layers and document their parameters.
"""

import copy
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._array_api import (
    get_namespace_and_device,
    move_to,
    supported_float_dtypes,
)
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._array_ops import array_ops
from ._feedback import FEEDBACK_SAMPLERS
from ._layers import DenseLayer
from ._lbfgs import check_lbfgs, fit_lbfgs
from ._network import Network
from ._optimizers import OPTIMIZERS, make_optimizer
from ._rule_api import FeedbackSampler, LearningRule
from ._rules import RULES, get_rule
from ._training import (
    FitState,
    TrainingRecords,
    TrainingSettings,
    TrainingState,
    fit_stochastic,
)

_INT32_MAX = np.iinfo(np.int32).max


class BaseDFA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Parameters, validation and fit logic shared by every skdfa network.

    Subclasses choose the layers (``_make_layers``), the output activation and
    the target encoding; everything else is here or in the engine.
    """

    # Not a parameter: True makes the training loop read every batch's loss
    # on the host (``TrainingSettings.sync_every_batch``), which ``skdfa
    # bench --effect-of per-batch-sync`` sets on an estimator to time it.
    _sync_every_batch = False

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "rule": [StrOptions(set(RULES)), LearningRule],
        "solver": [StrOptions({*OPTIMIZERS, "lbfgs"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "step"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "step_epochs": ["array-like"],
        "step_factor": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "feedback_distribution": [StrOptions(set(FEEDBACK_SAMPLERS))],
        "feedback_scale": [
            StrOptions({"auto", "glorot"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "feedback_random_state": ["random_state"],
        "weight_init": [StrOptions({"glorot", "glorot_zero_bias", "zeros", "normal"})],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "track_alignment": ["boolean", Interval(Integral, 0, None, closed="left")],
        "feedback_decay": [Interval(Real, 0, 1, closed="left")],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        rule,
        *,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        step_epochs,
        step_factor,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        rho,
        n_iter_no_change,
        max_fun,
        feedback_distribution,
        feedback_scale,
        feedback_random_state,
        weight_init,
        dropout,
        track_alignment,
        feedback_decay,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.rule = rule
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.step_epochs = step_epochs
        self.step_factor = step_factor
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.rho = rho
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.feedback_distribution = feedback_distribution
        self.feedback_scale = feedback_scale
        self.feedback_random_state = feedback_random_state
        self.weight_init = weight_init
        self.dropout = dropout
        self.track_alignment = track_alignment
        self.feedback_decay = feedback_decay

    _y_numeric = False

    # -- hooks for subclasses -------------------------------------------------

    def _make_layers(self, units):
        """The layers for widths ``units`` = [n_features, hidden..., n_outputs]."""
        return [DenseLayer(n_in, n_out) for n_in, n_out in zip(units[:-1], units[1:])]

    def _expose_params(self):
        """Publish the layers' parameter arrays as fitted attributes (shared,
        not copied: training updates them in place)."""
        self.coefs_ = [layer.coef for layer in self._fit_state.network.layers]
        self.intercepts_ = [layer.intercept for layer in self._fit_state.network.layers]

    def _exposed_params(self):
        """The fitted attributes' arrays, as ``(name, array)`` pairs per layer
        in the order of the layer's ``param_names``."""
        return [
            [(f"coefs_[{i}]", coef), (f"intercepts_[{i}]", intercept)]
            for i, (coef, intercept) in enumerate(zip(self.coefs_, self.intercepts_))
        ]

    @abstractmethod
    def _encode_targets(self, y, incremental, first_pass):
        """Validated y -> 2-D float targets (and set ``classes_`` if any)."""

    @abstractmethod
    def _output_activation(self):
        """Output activation name for the encoded targets."""

    @abstractmethod
    def _validation_score(self, net, X, Y, sample_weight):
        """Score of the network on an encoded validation split."""

    def _stratify(self, Y):
        return None

    # -- parameter checks the declarative constraints cannot express ------------

    def _positive_integers(self, name, unit=""):
        """The parameter ``name``, an int or a sequence of them, as a list of
        positive ints (``unit`` names them in the error)."""
        value = getattr(self, name)
        values = [value] if not hasattr(value, "__iter__") else list(value)
        if not all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in values):
            raise InvalidParameterError(
                f"The '{name}' parameter of {type(self).__name__} must be positive "
                f"integers{unit}, got {value!r}."
            )
        return [int(v) for v in values]

    def _hidden_sizes(self):
        return self._positive_integers("hidden_layer_sizes")

    def _step_epochs(self):
        return tuple(sorted(self._positive_integers("step_epochs", " (epochs)")))

    def _dropout_rates(self):
        """``(input_rate, hidden_rate)`` from ``dropout``."""
        if isinstance(self.dropout, Real):
            return (0.0, float(self.dropout))
        rates = tuple(self.dropout)
        if len(rates) != 2 or not all(isinstance(r, Real) and 0 <= r < 1 for r in rates):
            raise InvalidParameterError(
                "The 'dropout' parameter of "
                f"{type(self).__name__} must be a float in [0, 1) or a pair "
                f"(input_rate, hidden_rate) of such floats, got {self.dropout!r}."
            )
        return tuple(float(r) for r in rates)

    # -- the fitted attributes are the model ----------------------------------

    def _read_exposed_params(self):
        """Give the network the arrays the fitted attributes hold now.

        As in MLPClassifier, whose ``coefs_`` are the model, rebinding a
        fitted attribute (or one of its arrays) changes predictions and
        further training, after pickling too.
        """
        layers = self._fit_state.network.layers
        exposed = self._exposed_params()
        if len(exposed) != len(layers):
            raise ValueError(
                f"The fitted attributes of {type(self).__name__} describe "
                f"{len(exposed)} layers; the network has {len(layers)}."
            )
        ops = self._fit_state.network.ops
        copied = False
        for layer, pairs in zip(layers, exposed):
            for param_name, (name, array) in zip(layer.param_names, pairs):
                current = getattr(layer, param_name)
                if array is current:
                    continue
                array = ops.asarray(array)
                if array.shape != current.shape:
                    raise ValueError(
                        f"{name} has shape {array.shape}; the fitted network "
                        f"needs {current.shape}."
                    )
                # The network updates its arrays in place: it takes the given
                # array itself (as MLPClassifier does) unless it cannot.
                # (numpy's flags; other namespaces' arrays are taken as they are)
                flags = getattr(array, "flags", None)
                usable = array.dtype == current.dtype and (
                    flags is None or (flags.c_contiguous and flags.writeable)
                )
                if not usable:
                    array = ops.astype(ops.copy(array), current.dtype)
                    copied = True
                setattr(layer, param_name, array)
        if copied:
            # The attributes hold the network's arrays again, which training updates.
            self._expose_params()

    # -- warm start ------------------------------------------------------------

    # Settings that shape the network: no warm start or partial_fit can change them.
    _structure_params = ("hidden_layer_sizes", "output_activation")
    # Settings of the feedback: a change redraws it for the new rule.
    _feedback_params = (
        "rule", "feedback_distribution", "feedback_scale", "feedback_random_state"
    )
    # Settings of the optimizer: a change builds a new one (as MLPClassifier).
    _optimizer_params = (
        "solver", "learning_rate", "learning_rate_init", "power_t", "step_epochs",
        "step_factor", "momentum",
        "nesterovs_momentum", "beta_1", "beta_2", "epsilon", "rho",
    )

    def _built_settings(self):
        names = (
            *self._structure_params, *self._feedback_params, *self._optimizer_params,
            "activation", "early_stopping",
        )
        # The parameters themselves: get_params would inspect the constructor's
        # signature at every partial_fit call.
        settings = {name: getattr(self, name, None) for name in names}
        settings["hidden_layer_sizes"] = tuple(self._hidden_sizes())
        settings["step_epochs"] = self._step_epochs()
        return settings

    def _carry_over(self):
        """Apply the settings changed since the network was built (warm start,
        partial_fit): the weights carry over, everything else follows the
        current parameters; a change of the network's shape raises."""
        built, now = self._built_with, self._built_settings()

        def changed(names):
            # ``is`` first: RandomState instances compare by identity.
            return [n for n in names if not (built[n] is now[n] or built[n] == now[n])]

        for name in changed(self._structure_params):
            raise ValueError(
                f"{type(self).__name__} was fitted with {name}={built[name]!r}; "
                f"warm_start and partial_fit keep the fitted network, so they cannot "
                f"use {name}={now[name]!r}. Fit a new model (warm_start=False) for it."
            )
        net = self._fit_state.network
        net.activation = self.activation
        rebuild_optimizer = bool(changed(self._optimizer_params))
        if changed(self._feedback_params):
            had_learned = bool(net.rule_state.learned)
            net.rule = get_rule(self.rule)
            ops = net.ops
            net.initialize_feedback(
                self._feedback_sampler(ops.numpy_dtype(net.dtype)), to=ops.asarray
            )
            self.feedback_ = net.feedback_matrices()
            # The optimizer moves learnt feedback with the weights: new
            # feedback arrays need an optimizer state of their own.
            rebuild_optimizer |= had_learned or bool(net.rule_state.learned)
        if rebuild_optimizer:
            self._fit_state.optimizer = self._make_optimizer(net)
        if changed(["early_stopping"]) and hasattr(self, "loss_curve_"):
            self._reset_stopping_state()
        self._built_with = now

    # -- fitting --------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden = self._hidden_sizes()
        self._dropout_rates()
        self._step_epochs()
        if self.solver == "lbfgs":
            check_lbfgs(self)
        first_pass = not hasattr(self, "_fit_state") or (
            not self.warm_start and not incremental
        )
        # Everything follows X: with array_api_dispatch on, the sample weights
        # move to X's namespace and device, and the network lives there. Targets
        # are encoded with numpy (labels may be strings), then moved.
        xp, is_array_api, device = get_namespace_and_device(X)
        if is_array_api:
            _check_dense(X, type(self).__name__)
            sample_weight = move_to(sample_weight, xp=xp, device=device)
            if hasattr(y, "__dlpack__") and not isinstance(y, np.ndarray):
                y = move_to(y, xp=np, device="cpu")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr"],
            dtype=(
                _float_dtypes(xp, device)
                if first_pass
                # The network's dtype, as X's namespace spells it.
                else getattr(xp, self._fit_state.network.ops.numpy_dtype(
                    self._fit_state.network.dtype).name)
            ),
            multi_output=True,
            y_numeric=self._y_numeric,
            reset=first_pass,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = self._encode_targets(y, incremental, first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
        if first_pass:
            self._initialize(X, Y, hidden)
        else:
            self._check_namespace(X, "partial_fit" if incremental else "fit")
            self._read_exposed_params()
            self._carry_over()
        ops = self._fit_state.network.ops
        Y = ops.asarray(Y, dtype=self._fit_state.network.dtype)
        # Overflow is caught by the training loop's finiteness checks and
        # reported as divergence; numpy's warnings about it would be noise.
        with np.errstate(over="ignore", invalid="ignore"):
            if self.solver == "lbfgs":
                fit_lbfgs(self, X, Y, sample_weight)
            else:
                if not hasattr(self, "loss_curve_"):
                    # A warm start from an L-BFGS fit.
                    self._start_stochastic_history()
                records = self._training_records()
                try:
                    fit_stochastic(
                        self._fit_state, self._training_settings(), records, X, Y,
                        sample_weight, incremental,
                    )
                finally:
                    self._publish_records(records)
        # Explicit row count: ``-1`` cannot be inferred when there is no hidden layer.
        state = self._fit_state.training
        self.alignment_ = ops.asarray(
            np.array(state.alignment, dtype=np.float64).reshape(
                len(state.alignment), self._fit_state.network.n_layers - 1
            )
        )
        self.weight_alignment_ = ops.asarray(
            np.array(state.weight_alignment, dtype=np.float64).reshape(
                len(state.weight_alignment), self._fit_state.network.n_layers - 1
            )
        )
        self.alignment_steps_ = ops.asarray(np.array(state.alignment_steps, dtype=np.int64))
        # Views of the network's feedback, which learning rules change in place
        # (fresh views: an unpickled model's old ones are copies).
        self.feedback_ = self._fit_state.network.feedback_matrices()
        return self

    def _check_namespace(self, X, method):
        """Raise unless X has the namespace and device of the fitted network."""
        fitted, given = self._fit_state.network.ops, array_ops(X)
        if given is not fitted:
            raise ValueError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                "namespace and the same device as those passed to fit(): the model "
                f"was fitted on {_describe(fitted)} arrays, {method} got "
                f"{_describe(given)} {'sparse matrix' if sp.issparse(X) else 'arrays'}. "
                "Move the model first, e.g. to numpy with: 'from "
                "sklearn.utils._array_api import move_estimator_to; with "
                "sklearn.config_context(array_api_dispatch=True): model = "
                "move_estimator_to(model, numpy, \"cpu\")'."
            )

    def __sklearn_array_api_convert__(self, converter):
        """A copy whose arrays are ``converter(array)`` (``move_estimator_to``).

        The network, the optimizer state and the fitted arrays move together,
        and the fitted attributes share the moved parameters again; the
        classes stay numpy arrays.
        """
        new = copy.deepcopy(self)
        if not hasattr(new, "_fit_state"):
            return new
        new._fit_state.move(converter)
        new.alignment_ = converter(new.alignment_)
        new.weight_alignment_ = converter(new.weight_alignment_)
        new.alignment_steps_ = converter(new.alignment_steps_)
        new._expose_params()
        new.feedback_ = new._fit_state.network.feedback_matrices()
        return new

    def _initialize(self, X, Y, hidden):
        self.n_outputs_ = Y.shape[1]
        units = [X.shape[1], *hidden, self.n_outputs_]
        self.n_layers_ = len(units)
        self.out_activation_ = self._output_activation()
        net = Network(self._make_layers(units), self.activation, self.out_activation_, self.rule)
        # One stream for the weights, the feedback seed, then shuffling and
        # dropout; the feedback seed is always drawn so that setting
        # feedback_random_state leaves every other draw unchanged.
        # Weights and feedback are drawn with numpy, then moved to X's device:
        # the same seeds give the same model in every namespace.
        ops = array_ops(X)
        dtype = ops.numpy_dtype(X.dtype)

        def feedback(rng):
            self._derived_feedback_seed = rng.randint(_INT32_MAX)
            return self._feedback_sampler(dtype)

        rng = check_random_state(self.random_state)
        net.initialize(rng, self.weight_init, dtype, feedback, to=ops.asarray)
        self.feedback_ = net.feedback_matrices()
        training = TrainingState(rng, np.random.default_rng(rng.randint(_INT32_MAX)))
        self._fit_state = FitState(net, self._make_optimizer(net), training)
        self._expose_params()
        self.n_params_ = net.n_params
        self.n_iter_ = 0
        self.t_ = 0
        if self.solver != "lbfgs":
            self._start_stochastic_history()
        self._built_with = self._built_settings()

    def _training_settings(self):
        """What the stochastic training loop reads of the parameters."""
        return TrainingSettings(
            max_iter=self.max_iter, batch_size=self.batch_size, shuffle=self.shuffle,
            tol=self.tol, n_iter_no_change=self.n_iter_no_change,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction, verbose=self.verbose,
            alpha=self.alpha, feedback_decay=self.feedback_decay,
            track_alignment=self.track_alignment, dropout=self._dropout_rates(),
            learning_rate_init=self.learning_rate_init, stratify=self._stratify,
            validation_score=self._validation_score,
            constant_loss=self._constant_prediction_loss(),
            sync_every_batch=self._sync_every_batch,
        )

    def _constant_prediction_loss(self):
        """The loss per sample of outputs that make every class equally likely
        (log-loss outputs; None for the others)."""
        n_outputs = self.n_outputs_
        return {"softmax": float(np.log(n_outputs)),
                "logistic": n_outputs * float(np.log(2))}.get(self.out_activation_)

    def _training_records(self):
        """The fitted records that the training loop carries on."""
        return TrainingRecords(
            t=self.t_, loss_curve=self.loss_curve_,
            validation_scores=self.validation_scores_, best_loss=self.best_loss_,
            best_validation_score=self.best_validation_score_, n_iter=self.n_iter_,
            loss=getattr(self, "loss_", None),
        )

    def _publish_records(self, records):
        """The training loop's records as fitted attributes."""
        self.t_, self.n_iter_ = records.t, records.n_iter
        self.loss_curve_ = records.loss_curve
        self.validation_scores_ = records.validation_scores
        self.best_loss_ = records.best_loss
        self.best_validation_score_ = records.best_validation_score
        if records.loss is not None:
            self.loss_ = records.loss

    def _start_stochastic_history(self):
        """The stochastic solvers' records (``loss_curve_`` and the stopping
        state), which L-BFGS does not keep, as in MLPClassifier."""
        self.loss_curve_ = []
        self._fit_state.training.no_improvement_count = 0
        self._reset_stopping_state()

    def _make_optimizer(self, net):
        # scipy runs L-BFGS whole within a fit: it keeps no state between fits.
        return None if self.solver == "lbfgs" else make_optimizer(self, net.params, net.ops)

    def _feedback_sampler(self, dtype):
        """The rule's feedback stream: seeded by ``feedback_random_state``, or
        by a seed drawn from ``random_state``'s stream after the weights."""
        feedback_rng = (
            np.random.RandomState(self._derived_feedback_seed)
            if self.feedback_random_state is None
            else check_random_state(self.feedback_random_state)
        )
        return FeedbackSampler(feedback_rng, self.feedback_distribution, self.feedback_scale, dtype)

    def _reset_stopping_state(self):
        self._fit_state.training.best_params = None
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to data X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. Never modified; float32 input trains a float32
            network.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets: class labels (classifier) or real values (regressor).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                "lbfgs is not stochastic."
            )
        return True

    # -- inference ------------------------------------------------------------

    def _decision(self, X, method):
        check_is_fitted(self)
        xp, is_array_api, device = get_namespace_and_device(X)
        if is_array_api:
            _check_dense(X, type(self).__name__)
        X = validate_data(
            self, X, accept_sparse=["csr"], dtype=_float_dtypes(xp, device), reset=False
        )
        self._check_namespace(X, method)
        self._read_exposed_params()
        return self._fit_state.network.decision(X)

    def transform(self, X):
        """The output layer's linear outputs (pre-activations) for X.

        These are the "linear outputs" that :class:`StackingDFA` stacks.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, `n_outputs_`)
            Output pre-activations, in the fitted network's dtype.
        """
        return self._decision(X, "transform")

    @property
    def _n_features_out(self):
        return self.n_outputs_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags


def _float_dtypes(xp, device):
    """The float dtypes X may keep: float64 and float32 where the device has them."""
    supported = supported_float_dtypes(xp, device)
    dtypes = [dtype for dtype in (xp.float64, xp.float32) if dtype in supported]
    if not dtypes:
        raise TypeError(
            f"{xp.__name__} on device {device} offers neither float64 nor float32; "
            "skdfa trains in one of them."
        )
    return dtypes


def _check_dense(X, name):
    """Sparse tensors are refused with a clear message (scipy sparse X is fine)."""
    layout = getattr(X, "layout", None)
    if layout is not None and "strided" not in str(layout):
        raise TypeError(
            f"{name} got a sparse {type(X).__module__}.{type(X).__name__} "
            f"({layout}); sparse input is supported as a scipy.sparse CSR matrix "
            "(numpy namespace) only. Pass a dense tensor, or X.to_dense()."
        )


def _describe(ops):
    return ops.name if ops.device is None else f"{ops.name} ({ops.device})"


def _ravel_single_column(scores, ops):
    """One-column outputs as a 1-d array, in their namespace (``ops``'s)."""
    if scores.shape[1] != 1:
        return scores
    return ops.xp.reshape(scores, (-1,))
