"""Stacking of DFA networks that differ in their random feedback.

The 2017 experiments trained many weak DFA networks that share their initial
weights and differ only in their fixed feedback matrices (or differ in both),
then trained a dense layer on the concatenation of their linear outputs.
:class:`StackingDFA` is that recipe as a meta-estimator: it validates, fans the
learners out with :mod:`sklearn.utils.parallel` (so any joblib backend, dask's
included, runs them), and trains the head on what they return.
"""

import copy
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from joblib import cpu_count, effective_n_jobs
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._array_api import get_namespace_and_device, move_to
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
)
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_feature_names_in,
    _check_method_params,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)
from threadpoolctl import threadpool_limits

from ._array_ops import array_ops
from ._estimator_base import _check_dense, _float_dtypes
from ._mlp import DFAClassifier
from ._rules import RULES, get_rule

_INT32_MAX = np.iinfo(np.int32).max


def _fit_one(
    estimator, X, y, index, random_state, feedback_random_state, cv, n_threads, fit_params
):
    """Fit one learner; return it and the linear outputs the head trains on.

    X arrives as an argument, so process backends share it through a
    read-only memory map instead of copying it into every task.

    Parameters
    ----------
    estimator : estimator
        An unfitted clone of the learner.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    index : int
        The learner's position, for error messages.
    random_state, feedback_random_state : int
        The learner's seeds.
    cv : cross-validation splitter or None
        ``None``: the head trains on the learner's in-sample outputs;
        otherwise on its out-of-fold outputs over these splits.
    n_threads : int or None
        BLAS threads this learner may use, so that concurrent learners do
        not oversubscribe the cores; ``None`` leaves the limit unchanged.
    fit_params : dict
        Metadata for the learner's ``fit`` (``sample_weight``), indexed like X.

    Returns
    -------
    estimator : estimator
        The learner fitted on all of (X, y).
    outputs : ndarray of shape (n_samples, n_outputs)
        Its linear outputs for X.
    """
    estimator.set_params(
        random_state=random_state, feedback_random_state=feedback_random_state
    )
    if estimator.get_params().get("verbose"):
        print(
            f"StackingDFA: learner {index} (random_state={random_state}, "
            f"feedback_random_state={feedback_random_state})"
        )
    with threadpool_limits(limits=n_threads, user_api="blas"):
        try:
            estimator.fit(X, y, **fit_params)
            outputs = (
                estimator.transform(X)
                if cv is None
                else _out_of_fold(estimator, X, y, cv, fit_params)
            )
        except ValueError as exc:
            raise ValueError(
                f"Learner {index} (random_state={random_state}, "
                f"feedback_random_state={feedback_random_state}) failed: {exc}"
            ) from exc
    return estimator, outputs


def _out_of_fold(estimator, X, y, cv, fit_params):
    """Linear outputs of each fold's clone of ``estimator`` on its held-out part.

    ``cross_val_predict`` does not offer ``method="transform"``; this is its
    loop for it. Each fold trains on a copy of its rows, as any fit on a subset
    must.

    Parameters
    ----------
    estimator : estimator
        The learner, fitted on all the data (its clones share its seeds).
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    cv : cross-validation splitter
        Its test folds must partition the samples.
    fit_params : dict
        Metadata for ``fit``, indexed like X; each fold gets its rows.

    Returns
    -------
    outputs : ndarray of shape (n_samples, n_outputs)
        Each sample's linear outputs from the fold that held it out.
    """
    ops = array_ops(X)

    def rows(index):
        return ops.rows(X, ops.index(index))

    n_outputs = estimator.transform(rows(np.arange(1))).shape[1]
    blocks, held_out = [], []
    for train, test in cv.split(X, y):
        fold_params = _check_method_params(X, fit_params, indices=train)
        fold = clone(estimator).fit(rows(train), y[train], **fold_params)
        block = fold.transform(rows(test))
        if block.shape[1] != n_outputs:
            raise ValueError(
                f"A cross-validation fold gave {block.shape[1]} outputs instead of "
                f"{n_outputs}: its training part lacks some class. Use fewer folds "
                "or a stratified splitter."
            )
        blocks.append(block)
        held_out.append(test)
    held_out = np.concatenate(held_out)
    if not np.array_equal(np.sort(held_out), np.arange(X.shape[0])):
        raise ValueError(
            "cv must partition the samples: every sample in exactly one test fold."
        )
    # Blocks come fold after fold; put each sample's row back in its place.
    outputs = ops.xp.concat(blocks, axis=0)
    return ops.xp.take(outputs, ops.index(np.argsort(held_out)), axis=0)


def _verbose(estimator, verbose):
    """A copy of ``estimator`` that prints its progress, if it can and is silent."""
    params = estimator.get_params()
    if "verbose" in params and not params["verbose"]:
        return clone(estimator).set_params(verbose=verbose)
    return estimator


def _head_has(attr):
    """Whether the head (fitted, else configured, else default) has ``attr``."""

    def check(self):
        if hasattr(self, "final_estimator_"):
            head = self.final_estimator_
        elif self.final_estimator is None:
            head = self._default_head()
        else:
            head = self.final_estimator
        return hasattr(head, attr)

    return check


class StackingDFA(ClassifierMixin, TransformerMixin, MetaEstimatorMixin, BaseEstimator):
    """Many DFA networks with different random feedback, and a head on their
    stacked linear outputs.

    Each of ``n_estimators`` clones of ``estimator`` gets its own
    ``feedback_random_state``; with ``vary="feedback"`` they all share one
    ``random_state`` (the same initial weights and data order), so they differ
    only in their fixed feedback matrices; with ``vary="all"`` they differ in
    both. The head (``final_estimator``) is trained on the concatenation of
    the learners' linear outputs (:meth:`DFAClassifier.transform`), in-sample
    as in the 2017 experiments, or out-of-fold with ``cv`` as
    :class:`sklearn.ensemble.StackingClassifier` does.

    The learners are fitted with :class:`sklearn.utils.parallel.Parallel`:
    ``n_jobs`` processes on one machine, or a dask.distributed cluster under
    ``joblib.parallel_config(backend="dask")`` (``pip install -e ".[dask]"``).
    The fitted model is the same, bit for bit, whatever the backend and
    ``n_jobs``.

    Parameters
    ----------
    estimator : estimator, default=None
        The learner to clone. It needs ``random_state`` and
        ``feedback_random_state`` parameters and a ``transform`` method that
        returns its linear outputs. Its own seeds are replaced by those drawn
        from ``random_state``. ``None`` means ``DFAClassifier()``.
    n_estimators : int, default=10
        Number of learners.
    vary : {"feedback", "all"}, default="feedback"
        ``"feedback"``: the learners share ``random_state`` and differ in
        ``feedback_random_state``; ``"all"``: they differ in both. Rules whose
        feedback does not depend on its seed (``"bp"``, ``"usf"``) would give
        identical learners under ``"feedback"``: fit raises a ``ValueError``.
    final_estimator : classifier, default=None
        The head. ``None`` means a dense softmax layer,
        ``DFAClassifier(hidden_layer_sizes=(), learning_rate_init=1e-2)``
        (the 2017 dense head); an
        :class:`RDClassifier` or any scikit-learn classifier works too.
    cv : int, cross-validation generator, iterable or None, default=None
        ``None``: the head trains on the learners' in-sample linear outputs
        (the 2017 recipe). Otherwise the cross-validation splits, as for
        :func:`sklearn.model_selection.cross_val_predict` (an int is a number
        of stratified folds): the head trains on out-of-fold outputs, which
        avoids leaking the training labels through over-fitted learners. The
        learners used at prediction are always fitted on all the data.
    passthrough : bool, default=False
        Also give the head the original features X.
    n_jobs : int, default=None
        Learners fitted in parallel. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` means all processors.
        Each worker is limited to ``cores // n_workers`` BLAS threads.
    random_state : int, RandomState instance or None, default=None
        Seeds every learner, the head (unless its own ``random_state`` is set)
        and unseeded shuffling splitters, through
        :class:`numpy.random.SeedSequence`.
    verbose : int, default=0
        Verbosity of the parallel fan-out. When positive, it is also passed
        to the learners and the head (those with a ``verbose`` parameter), so
        each prints its training progress after a line naming it.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted learners.
    final_estimator_ : classifier
        The fitted head.
    random_states_ : ndarray of shape (n_estimators,)
        Each learner's ``random_state``.
    feedback_random_states_ : ndarray of shape (n_estimators,)
        Each learner's ``feedback_random_state``.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when X has string column names.

    See Also
    --------
    DFAClassifier : The default learner (and, without hidden layers, head).
    sklearn.ensemble.StackingClassifier : Stacking of different estimators.

    References
    ----------
    Nøkland, A. (2016). Direct Feedback Alignment Provides Learning in Deep
    Neural Networks. NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from skdfa import DFAClassifier, StackingDFA
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X / 16, y, stratify=y, random_state=0)
    >>> learner = DFAClassifier(hidden_layer_sizes=(32,), max_iter=10,
    ...                         learning_rate_init=1e-2)
    >>> clf = StackingDFA(learner, n_estimators=4, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.9
    True
    >>> clf.transform(X_test[:2]).shape
    (2, 40)
    >>> bool((clf.random_states_ == clf.random_states_[0]).all())
    True
    """

    _parameter_constraints: dict = {
        "estimator": [None, HasMethods(["fit", "transform"])],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "vary": [StrOptions({"feedback", "all"})],
        "final_estimator": [None, HasMethods(["fit", "predict"])],
        "cv": ["cv_object"],
        "passthrough": ["boolean"],
        "n_jobs": [None, Integral],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        n_estimators=10,
        *,
        vary="feedback",
        final_estimator=None,
        cv=None,
        passthrough=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.vary = vary
        self.final_estimator = final_estimator
        self.cv = cv
        self.passthrough = passthrough
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @staticmethod
    def _default(estimator):
        # Defaults take the sample weights under metadata routing: users
        # cannot request them on an estimator they did not pass.
        if _routing_enabled():
            estimator.set_fit_request(sample_weight=True)
        return estimator

    @classmethod
    def _default_head(cls):
        # Stacked linear outputs are few, informative features: a softmax
        # layer fits them faster at a learning rate 10x Adam's default.
        return cls._default(DFAClassifier(hidden_layer_sizes=(), learning_rate_init=1e-2))

    def _head(self):
        return self._default_head() if self.final_estimator is None else self.final_estimator

    def _learner(self):
        """The estimator to clone, checked for the seeds stacking varies."""
        estimator = (
            self._default(DFAClassifier()) if self.estimator is None else self.estimator
        )
        params = estimator.get_params()
        missing = [p for p in ("random_state", "feedback_random_state") if p not in params]
        if missing:
            raise InvalidParameterError(
                f"The 'estimator' parameter of {type(self).__name__} must have "
                f"the parameters 'random_state' and 'feedback_random_state' "
                f"(as DFAClassifier has); {type(estimator).__name__} lacks "
                f"{', '.join(repr(p) for p in missing)}."
            )
        try:
            rule = get_rule(params.get("rule"))
        except ValueError:  # the learner validates its own rule when it fits
            rule = None
        if (
            self.vary == "feedback"
            and self.n_estimators > 1
            and rule is not None
            and not rule.random_feedback
        ):
            raise ValueError(
                f"vary='feedback' would fit {self.n_estimators} identical learners: "
                f"rule={params['rule']!r} has no random feedback, and the learners would differ "
                "only in feedback_random_state. Use vary='all', or one of the rules "
                f"{sorted(name for name, r in RULES.items() if r.random_feedback)}."
            )
        # Fail here, once, rather than in every worker.
        if hasattr(estimator, "_validate_params"):
            estimator._validate_params()
        return estimator

    def _seeds(self):
        """(learner random states, learner feedback states, head/cv seed)."""
        if isinstance(self.random_state, Integral):
            entropy = int(self.random_state)
        else:
            entropy = int(check_random_state(self.random_state).randint(_INT32_MAX))
        weights, feedback, other = np.random.SeedSequence(entropy).spawn(3)
        n = self.n_estimators
        if self.vary == "feedback":
            random_states = np.repeat(weights.generate_state(1), n)
        else:
            random_states = weights.generate_state(n)
        return (
            random_states.astype(np.int64),
            feedback.generate_state(n).astype(np.int64),
            int(other.generate_state(1)[0]),
        )

    def _splitter(self, y, seed):
        """The cv splitter, with a fixed seed if it shuffles unseeded."""
        if self.cv is None:
            return None
        cv = copy.deepcopy(check_cv(self.cv, y, classifier=True))
        if getattr(cv, "random_state", 0) is None:
            cv.random_state = seed
        return cv

    @_fit_context(
        # The learner's and the head's parameters are validated when fitted.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the learners in parallel, then the head on their linear outputs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Never copied or written to once it is a float
            array: parallel workers read it through a memory map.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, passed to every learner's and the head's ``fit``
            (each fold's rows with ``cv``); the learner and the head must
            support them. Under metadata routing, they go where requested
            (as any other metadata), and the default learner and head
            request them.
        **fit_params : dict
            Other metadata for the learners and the head; only with
            ``sklearn.set_config(enable_metadata_routing=True)``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        learner = self._learner()
        head = self._head()
        # Tensors pass through to the learners (with array_api_dispatch on);
        # the labels stay numpy, for the splitters.
        xp, is_array_api, device = get_namespace_and_device(X)
        if is_array_api:
            _check_dense(X, type(self).__name__)
            if hasattr(y, "__dlpack__") and not isinstance(y, np.ndarray):
                y = move_to(y, xp=np, device="cpu")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr"],
            dtype=_float_dtypes(xp, device),
            copy=False,
        )
        check_classification_targets(y)
        learner_params, head_params = self._route_fit_params(
            X, learner, head, sample_weight, fit_params
        )
        if self.verbose:
            learner, head = (_verbose(est, self.verbose) for est in (learner, head))
        self.random_states_, self.feedback_random_states_, seed = self._seeds()
        cv = self._splitter(y, seed)

        # Concurrent learners share the cores' BLAS threads; a lone learner
        # runs in the caller's process and keeps the caller's settings.
        n_workers = min(effective_n_jobs(self.n_jobs), self.n_estimators)
        n_threads = max(1, cpu_count() // n_workers) if n_workers > 1 else None
        results = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fit_one)(
                clone(learner),
                X,
                y,
                i,
                int(state),
                int(feedback),
                copy.deepcopy(cv),
                n_threads,
                learner_params,
            )
            for i, (state, feedback) in enumerate(
                zip(self.random_states_, self.feedback_random_states_)
            )
        )
        self.estimators_ = [estimator for estimator, _ in results]
        outputs = [block for _, block in results]
        self._n_outputs = [block.shape[1] for block in outputs]
        X_meta = self._stack(outputs, X)

        self.final_estimator_ = clone(head)
        # An unseeded head is seeded too, so that random_state fixes the model.
        if self.final_estimator_.get_params().get("random_state", 0) is None:
            self.final_estimator_.set_params(random_state=seed)
        if self.verbose:
            print("StackingDFA: head")
        self.final_estimator_.fit(self._head_input(X_meta), y, **head_params)
        self.classes_ = self.final_estimator_.classes_
        return self

    def _route_fit_params(self, X, learner, head, sample_weight, fit_params):
        """The metadata for the learners' and the head's ``fit``."""
        if sample_weight is not None:
            fit_params = {**fit_params, "sample_weight": sample_weight}
        if _routing_enabled():
            routed = process_routing(self, "fit", **fit_params)
            learner_params, head_params = routed.estimator.fit, routed.final_estimator.fit
        else:
            _raise_for_params(fit_params, self, "fit", allow=["sample_weight"])
            for role, est in (("learner", learner), ("head", head)):
                if sample_weight is not None and not has_fit_parameter(est, "sample_weight"):
                    raise TypeError(
                        f"The {role} {type(est).__name__} does not support sample "
                        "weights (its fit has no sample_weight parameter)."
                    )
            learner_params = head_params = fit_params
        # Metadata indexed like X, as the learners and folds slice it.
        return (
            _check_method_params(X, learner_params),
            _check_method_params(X, head_params),
        )

    def get_metadata_routing(self):
        """Get the metadata routing of this object.

        ``fit``'s metadata (such as ``sample_weight``) goes to the learners'
        and the head's ``fit``, where they request it (see scikit-learn's
        user guide on metadata routing).

        Returns
        -------
        routing : MetadataRouter
            The routing of the learner (``estimator``) and the head
            (``final_estimator``).
        """
        router = MetadataRouter(owner=self)
        router.add(
            estimator=self._learner(),
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )
        router.add(
            final_estimator=self._head(),
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )
        return router

    def _stack(self, outputs, X):
        """Concatenate the learners' outputs (and X with ``passthrough``)."""
        if self.passthrough and sp.issparse(X):
            return sp.hstack([*outputs, X], format="csr")
        xp = array_ops(outputs[0]).xp
        return xp.concat([*outputs, X] if self.passthrough else outputs, axis=1)

    def _head_input(self, X_meta):
        """The stacked outputs as the head takes them: as they are if it
        supports the array API, else as a numpy array."""
        if sp.issparse(X_meta) or get_tags(self.final_estimator_).array_api_support:
            return X_meta
        return array_ops(X_meta).to_numpy(X_meta)

    def transform(self, X):
        """The learners' stacked linear outputs (with X if ``passthrough``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        X_meta : {ndarray, sparse matrix} of shape (n_samples, n_features_meta)
            ``n_estimators * n_outputs`` columns, learner after learner, then
            the ``n_features_in_`` columns of X with ``passthrough``.
        """
        check_is_fitted(self)
        xp, is_array_api, device = get_namespace_and_device(X)
        if is_array_api:
            _check_dense(X, type(self).__name__)
        X = validate_data(
            self, X, accept_sparse=["csr"], dtype=_float_dtypes(xp, device), reset=False
        )
        return self._stack([est.transform(X) for est in self.estimators_], X)

    def get_feature_names_out(self, input_features=None):
        """Names of the columns of :meth:`transform`.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names, used only with ``passthrough``; they must
            match ``feature_names_in_`` if it is defined.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``stackingdfa_<learner><i>_<j>`` for output ``j`` of learner ``i``
            (``stackingdfa_<learner><i>`` for single-output learners), then
            the input features with ``passthrough``.
        """
        check_is_fitted(self)
        input_features = _check_feature_names_in(
            self, input_features, generate_names=self.passthrough
        )
        prefix = type(self).__name__.lower()
        names = []
        for i, (est, n_out) in enumerate(zip(self.estimators_, self._n_outputs)):
            stem = f"{prefix}_{type(est).__name__.lower()}{i}"
            names.extend([stem] if n_out == 1 else [f"{stem}_{j}" for j in range(n_out)])
        if self.passthrough:
            names.extend(input_features)
        return np.asarray(names, dtype=object)

    def predict(self, X):
        """Predict class labels with the head.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        X_meta = self._head_input(self.transform(X))
        return self.final_estimator_.predict(X_meta)

    @available_if(_head_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the head.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The head's probabilities.
        """
        X_meta = self._head_input(self.transform(X))
        return self.final_estimator_.predict_proba(X_meta)

    @available_if(_head_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the head.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The head's scores (one column, raveled, for binary problems).
        """
        X_meta = self._head_input(self.transform(X))
        return self.final_estimator_.decision_function(X_meta)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        learner_tags = get_tags(DFAClassifier() if self.estimator is None else self.estimator)
        tags.input_tags.sparse = learner_tags.input_tags.sparse
        if learner_tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = (
                learner_tags.transformer_tags.preserves_dtype
            )
        return tags
