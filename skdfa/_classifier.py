"""What every skdfa classifier shares: target encoding, decoding,
``partial_fit`` with ``classes``, probabilities and predictions."""


import numpy as np
from sklearn.base import (
    _fit_context,
)
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)

from ._base import ACTIVATIONS
from ._estimator_base import _ravel_single_column


def _binarize(binarizer, y):
    """``binarizer.transform(y)``, for labels ``y`` all among its classes.

    Multiclass labels are one-hot coded directly: ``transform`` would check
    ``y`` again, three times, which costs a ``partial_fit`` call on a small
    net more than its batches (0.5 ms for 200 labels).
    """
    if binarizer.y_type_ != "multiclass" or binarizer.sparse_output or y.ndim != 1:
        return binarizer.transform(y)
    Y = np.zeros((y.shape[0], binarizer.classes_.shape[0]), dtype=int)
    Y[np.arange(y.shape[0]), np.searchsorted(binarizer.classes_, y)] = 1
    return Y


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
            # Checked above: on 1-D labels np.unique gives unique_labels' answer
            # at a tenth of its cost, paid at every partial_fit call.
            labels = np.unique(y) if y.ndim == 1 else unique_labels(y)
            unknown = np.setdiff1d(labels, self.classes_)
            if len(unknown):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`: {unknown.tolist()}. "
                    f"`self.classes_` is {self.classes_.tolist()}."
                )
        # A single class is one column of zeros (LabelBinarizer's coding), as
        # in MLPClassifier: the network trains, and predicts that class.
        return _binarize(self._label_binarizer, y)

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
        ops = self._fit_state.network.ops
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
            if hasattr(self, "_fit_state"):
                del self._fit_state.network
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
        return _ravel_single_column(scores, self._fit_state.network.ops)

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
        ops = self._fit_state.network.ops
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
            return self._fit_state.network.ops.xp.log(proba)

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
