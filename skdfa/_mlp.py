"""Multi-layer perceptron estimators trained by DFA and the other rules.

The estimators only declare and validate parameters, encode targets and expose
fitted attributes; the network (``_network.py``), the rules (``_rules.py``) and
the training loop (``_training.py``) do the work.
"""

import copy
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
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
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._array_ops import array_ops
from ._base import ACTIVATIONS
from ._layers import DenseLayer
from ._network import Network
from ._optimizers import OPTIMIZERS, make_optimizer
from ._rule_api import FeedbackSampler, LearningRule
from ._rules import RULES, get_rule
from ._feedback import FEEDBACK_SAMPLERS
from ._lbfgs import check_lbfgs, fit_lbfgs
from ._training import TrainingRecords, TrainingSettings, TrainingState, fit_stochastic

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
        self.coefs_ = [layer.coef for layer in self._network.layers]
        self.intercepts_ = [layer.intercept for layer in self._network.layers]

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
        layers = self._network.layers
        exposed = self._exposed_params()
        if len(exposed) != len(layers):
            raise ValueError(
                f"The fitted attributes of {type(self).__name__} describe "
                f"{len(exposed)} layers; the network has {len(layers)}."
            )
        ops = self._network.ops
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
        params = self.get_params(deep=False)
        names = (
            *self._structure_params, *self._feedback_params, *self._optimizer_params,
            "activation", "early_stopping",
        )
        settings = {name: params.get(name) for name in names}
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
        net = self._network
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
            self._optimizer = self._make_optimizer(net.params)
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
        first_pass = not hasattr(self, "_network") or (
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
                else getattr(xp, self._network.ops.numpy_dtype(self._network.dtype).name)
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
        ops = self._network.ops
        Y = ops.asarray(Y, dtype=self._network.dtype)
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
                        self._network, self._state, self._training_settings(), records,
                        X, Y, sample_weight, incremental,
                    )
                finally:
                    self._publish_records(records)
        # Explicit row count: ``-1`` cannot be inferred when there is no hidden layer.
        state = self._state
        self.alignment_ = ops.asarray(
            np.array(state.alignment, dtype=np.float64).reshape(
                len(state.alignment), self._network.n_layers - 1
            )
        )
        self.weight_alignment_ = ops.asarray(
            np.array(state.weight_alignment, dtype=np.float64).reshape(
                len(state.weight_alignment), self._network.n_layers - 1
            )
        )
        self.alignment_steps_ = ops.asarray(np.array(state.alignment_steps, dtype=np.int64))
        # Views of the network's feedback, which learning rules change in place
        # (fresh views: an unpickled model's old ones are copies).
        self.feedback_ = self._network.feedback_matrices()
        return self

    def _check_namespace(self, X, method):
        """Raise unless X has the namespace and device of the fitted network."""
        fitted, given = self._network.ops, array_ops(X)
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
        if not hasattr(new, "_network"):
            return new
        new._network.move(converter)
        if new._optimizer is not None:
            new._optimizer.move(converter)
        new._state.move(converter)
        new.alignment_ = converter(new.alignment_)
        new.weight_alignment_ = converter(new.weight_alignment_)
        new.alignment_steps_ = converter(new.alignment_steps_)
        new._expose_params()
        new.feedback_ = new._network.feedback_matrices()
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
        self._state = TrainingState(rng, np.random.default_rng(rng.randint(_INT32_MAX)))
        self._network = net
        self._optimizer = self._make_optimizer(net.params)
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
        """The optimizer and fitted records that the training loop carries on."""
        return TrainingRecords(
            optimizer=self._optimizer, t=self.t_, loss_curve=self.loss_curve_,
            validation_scores=self.validation_scores_, best_loss=self.best_loss_,
            best_validation_score=self.best_validation_score_, n_iter=self.n_iter_,
            loss=getattr(self, "loss_", None),
        )

    def _publish_records(self, records):
        """The training loop's records as fitted attributes."""
        self._optimizer = records.optimizer
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
        self._state.no_improvement_count = 0
        self._reset_stopping_state()

    def _make_optimizer(self, params):
        # scipy runs L-BFGS whole within a fit: it keeps no state between fits.
        return None if self.solver == "lbfgs" else make_optimizer(self, params, self._network.ops)

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
        self._state.best_params = None
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
        return self._network.decision(X)

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


class _ClassifierMixin:
    """Target encoding and prediction of the classifiers (DFA and RD)."""

    def _encode_targets(self, y, incremental, first_pass):
        check_classification_targets(y)
        if first_pass and not incremental:
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        elif self.warm_start and not incremental:
            classes = unique_labels(y)
            if set(classes) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as "
                    f"in the previous call to fit. Previously got {self.classes_}, "
                    f"`y` has {classes}"
                )
        else:
            unknown = np.setdiff1d(unique_labels(y), self.classes_)
            if len(unknown):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`: {unknown.tolist()}. "
                    f"`self.classes_` is {self.classes_.tolist()}."
                )
        # A single class is one column of zeros (LabelBinarizer's coding), as
        # in MLPClassifier: the network trains, and predicts that class.
        return self._label_binarizer.transform(y)

    def _output_activation(self):
        if self._label_binarizer.y_type_ == "multiclass" and self.output_activation == "auto":
            return "softmax"
        return "logistic"

    def _stratify(self, Y):
        """Y to stratify the early-stopping split by, or None.

        Multilabel targets are not stratified (as MLPClassifier); nor are
        splits with a validation or training part smaller than the number of
        classes. MLPClassifier stratifies binary targets only; we stratify
        multiclass ones too, so the validation score sees every class. A
        class with a single sample cannot be in both parts: it raises (as in
        MLPClassifier for binary targets), naming the class.
        """
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return None
        labels = Y.argmax(axis=1) if Y.shape[1] > 1 else Y[:, 0].astype(np.intp)
        counts = np.bincount(labels, minlength=len(self.classes_))
        lonely = self.classes_[counts == 1]
        if lonely.size:
            raise ValueError(
                "The least populated classes in y have only 1 member, which is too "
                "few: early_stopping=True holds out a validation split stratified "
                "by class, which needs at least 2 samples of every class. Classes "
                f"with too few members are: {lonely.tolist()}. Add samples of these "
                "classes, remove them from the data, or set early_stopping=False."
            )
        n_val = int(np.ceil(self.validation_fraction * Y.shape[0]))
        if min(n_val, Y.shape[0] - n_val) < np.count_nonzero(counts):
            return None
        return Y

    def _decode(self, scores):
        """Labels from output pre-activations (or from encoded targets).

        Numeric labels come back in the namespace and device of ``scores``;
        others (strings) as a numpy array.
        """
        ops = self._network.ops
        xp = ops.xp
        if self._label_binarizer.y_type_ == "multilabel-indicator" and scores.shape[1] > 1:
            return xp.astype(scores > 0, xp.int64)
        if len(self.classes_) == 1:
            labels = np.repeat(self.classes_, scores.shape[0])
        else:
            if scores.shape[1] == 1:
                index = xp.astype(scores[:, 0] > 0, xp.int64)
            else:
                index = xp.argmax(scores, axis=1)
            labels = self.classes_[ops.to_numpy(index)]
        return ops.asarray(labels) if labels.dtype.kind in "biuf" else labels

    def _validation_score(self, net, X, Y, sample_weight):
        # Encoded targets decode like scores: positive <-> 1, argmax unchanged.
        to_numpy = net.ops.to_numpy
        return accuracy_score(
            to_numpy(self._decode(Y - 0.5)),
            to_numpy(self._decode(net.decision(X))),
            sample_weight=None if sample_weight is None else to_numpy(sample_weight),
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels (or a label indicator matrix for multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.
        classes : array-like of shape (n_classes,), default=None
            Every class across all calls; required on the first call. A label
            in y outside it raises a ValueError.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            if hasattr(self, "_network"):
                del self._network
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def decision_function(self, X):
        """Output pre-activations (the same as :meth:`transform`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            One column (raveled) for binary problems.
        """
        scores = self._decision(X, "decision_function")
        return _ravel_single_column(scores, self._network.ops)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to one, except for multilabel targets, whose columns are
            independent probabilities.
        """
        return self._proba(X, "predict_proba")

    def _proba(self, X, method):
        proba = self._decision(X, method)
        ops = self._network.ops
        if len(self.classes_) == 1:
            # One column per class: the only class has probability 1.
            return ops.xp.ones_like(proba)
        ACTIVATIONS[self.out_activation_](proba, ops)
        if proba.shape[1] == 1:
            return ops.xp.concat([1 - proba, proba], axis=1)
        if self._label_binarizer.y_type_ == "multiclass" and self.out_activation_ == "logistic":
            # Independent sigmoid outputs, normalised into a distribution.
            proba /= ops.xp.sum(proba, axis=1, keepdims=True)
        return proba

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            The log-probabilities.
        """
        proba = self._proba(X, "predict_log_proba")
        with np.errstate(divide="ignore"):
            return self._network.ops.xp.log(proba)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Predicted labels (an indicator matrix for multilabel targets).
        """
        return self._decode(self._decision(X, "predict"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


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
        ops = self._network.ops
        ACTIVATIONS[self.out_activation_](outputs, ops)
        return _ravel_single_column(outputs, ops)


def _ravel_single_column(scores, ops):
    """One-column outputs as a 1-d array, in their namespace (``ops``'s)."""
    if scores.shape[1] != 1:
        return scores
    return ops.xp.reshape(scores, (-1,))
