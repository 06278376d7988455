"""Displays of fitted networks, in the shape of scikit-learn's Display API.

Each display stores the data at ``__init__``, draws it with ``plot(ax=...)``
(setting ``ax_``, ``figure_`` and the drawn artists) and is built from fitted
estimators with ``from_estimator``. matplotlib is imported only when drawing.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._rules import RULES, LearningRule, get_rule

# Each learning rule's colour is its ``color`` attribute (skdfa.rules), the
# same in every figure of skdfa (displays, CLI plots, gallery).
# scikit-learn's MLPClassifier/MLPRegressor is black.
_SKLEARN_MLP_COLOR = "#000000"

# Line styles of successive hidden layers when colours tell estimators apart.
_LAYER_STYLES = ["-", "--", ":", "-."]


def rule_color(rule):
    """The colour that skdfa's figures give a learning rule.

    Every display, the ``skdfa compare`` plots and the gallery draw a rule in
    the same colour; use this function to match them in your own figures.

    Parameters
    ----------
    rule : str or LearningRule
        A learning rule (``"bp"``, ``"fa"``, ``"dfa"``, ``"drtp"``, ...), as
        given to the estimators' ``rule`` parameter (a name or a
        :class:`~skdfa.rules.LearningRule` instance, whose ``color`` it
        returns), or ``"sklearn"`` for scikit-learn's
        :class:`~sklearn.neural_network.MLPClassifier` (black).

    Returns
    -------
    color : str or None
        A matplotlib colour, as ``"#rrggbb"``; None for a rule that declares
        none (figures then use the colour cycle).

    Examples
    --------
    >>> from skdfa.plotting import rule_color
    >>> rule_color("dfa"), rule_color("bp"), rule_color("sklearn")
    ('#ff7f0e', '#1f77b4', '#000000')
    """
    if isinstance(rule, str) and rule == "sklearn":
        return _SKLEARN_MLP_COLOR
    try:
        return get_rule(rule).color
    except ValueError:
        raise ValueError(
            f"Unknown rule {rule!r}; known: {sorted(RULES) + ['sklearn']}, or a "
            "skdfa.rules.LearningRule instance."
        ) from None


def _estimator_color(estimator):
    """The rule's colour, black for scikit-learn's MLPs, None (the colour
    cycle) for anything else."""
    if type(estimator).__module__.startswith("sklearn.neural_network"):
        return _SKLEARN_MLP_COLOR
    try:
        return get_rule(getattr(estimator, "rule", None)).color
    except ValueError:
        return None


def _import_pyplot(caller):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib; install it with `pip install matplotlib`."
        ) from exc
    return plt


def _as_list(estimator):
    return list(estimator) if isinstance(estimator, (list, tuple)) else [estimator]


def _default_name(estimator):
    rule = getattr(estimator, "rule", None)
    name = type(estimator).__name__
    if isinstance(rule, LearningRule):
        return f"{name} ({rule.label})"
    return f"{name} ({rule})" if isinstance(rule, str) else name


def _names(names, estimators):
    if names is None:
        return [_default_name(est) for est in estimators]
    names = list(names)
    if len(names) != len(estimators):
        raise ValueError(f"Got {len(names)} names for {len(estimators)} estimators.")
    return names


def _get_axes(plt, ax):
    if ax is None:
        _, ax = plt.subplots()
    return ax


class TrainingHistoryDisplay:
    """Training loss and validation score per epoch, of one or more networks.

    Use :meth:`from_estimator` to build it from fitted estimators: any
    estimator with a ``loss_curve_`` works, scikit-learn's
    :class:`~sklearn.neural_network.MLPClassifier` included, so that learning
    rules can be compared on one axes. The loss goes on the left axis; the
    validation scores (estimators fitted with ``early_stopping=True``) are
    dashed, in the same colour, on a twin right axis.

    Parameters
    ----------
    loss_curves : list of array-like
        One training-loss curve per estimator, one value per epoch.
    validation_scores : list of (array-like or None), default=None
        One validation-score curve per estimator (None where it has none).
    names : list of str, default=None
        Legend labels; ``None`` numbers the curves.
    colors : list of (str or None), default=None
        One colour per estimator (None where matplotlib's colour cycle
        chooses); ``from_estimator`` gives each rule its colour,
        see :func:`rule_color`. An estimator whose colour an earlier one has
        is drawn dotted.

    Attributes
    ----------
    loss_lines_ : list of matplotlib Line2D
        The loss curves, one per estimator.
    score_lines_ : list of (matplotlib Line2D or None)
        The validation-score curves (None where an estimator has none).
    ax_ : matplotlib Axes
        The axes of the losses.
    ax_score_ : matplotlib Axes or None
        The twin axes of the validation scores (None when there are none).
    figure_ : matplotlib Figure
        The figure.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdfa import DFAClassifier
    >>> from skdfa.plotting import TrainingHistoryDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clfs = [DFAClassifier((32,), rule=rule, max_iter=5, early_stopping=True,
    ...                       n_iter_no_change=5, random_state=0).fit(X / 16, y)
    ...         for rule in ["dfa", "bp"]]
    >>> disp = TrainingHistoryDisplay.from_estimator(clfs, names=["DFA", "BP"])
    >>> [line.get_label() for line in disp.loss_lines_]
    ['DFA', 'BP']
    >>> disp.loss_lines_[0].get_xdata().tolist()
    [1, 2, 3, 4, 5]
    """

    def __init__(self, *, loss_curves, validation_scores=None, names=None, colors=None):
        self.loss_curves = loss_curves
        self.validation_scores = validation_scores
        self.names = names
        self.colors = colors

    def plot(self, *, ax=None, show_validation=True):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` makes a new figure.
        show_validation : bool, default=True
            Also draw the validation scores, on a twin axis.

        Returns
        -------
        display : TrainingHistoryDisplay
            The display, with the drawn artists as attributes.
        """
        plt = _import_pyplot("TrainingHistoryDisplay.plot")
        ax = _get_axes(plt, ax)
        n = len(self.loss_curves)
        names = self.names if self.names is not None else [f"#{i + 1}" for i in range(n)]
        scores = self.validation_scores if self.validation_scores is not None else [None] * n
        colors = self.colors if self.colors is not None else [None] * n
        has_scores = show_validation and any(s is not None and len(s) for s in scores)
        ax_score = ax.twinx() if has_scores else None

        self.loss_lines_, self.score_lines_ = [], []
        for i, (loss, score, name, color) in enumerate(zip(self.loss_curves, scores, names, colors)):
            epochs = np.arange(1, len(loss) + 1)
            # Two estimators of one rule (a dense and an RD network, say)
            # share its colour: the later one is dotted.
            style = ":" if color is not None and color in colors[:i] else "-"
            (line,) = ax.plot(epochs, loss, label=name, color=color, linestyle=style)
            self.loss_lines_.append(line)
            if ax_score is not None and score is not None and len(score):
                (score_line,) = ax_score.plot(
                    np.arange(1, len(score) + 1),
                    score,
                    linestyle="--",
                    color=line.get_color(),
                    label=f"{name} (validation)",
                )
                self.score_lines_.append(score_line)
            else:
                self.score_lines_.append(None)

        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title("Training history")
        # One legend entry per estimator: a validation curve has its loss
        # curve's colour.
        ax.legend(handles=self.loss_lines_, loc="center right", fontsize="small")
        if ax_score is not None:
            ax_score.set_ylabel("validation score (dashed)")
        self.ax_, self.ax_score_, self.figure_ = ax, ax_score, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, names=None, ax=None, show_validation=True):
        """Build and draw the display from fitted networks.

        Parameters
        ----------
        estimator : estimator or list of estimators
            Fitted estimators with ``loss_curve_`` (and ``validation_scores_``
            when fitted with ``early_stopping=True``).
        names : list of str, default=None
            Legend labels; ``None`` uses the class names (and rules).
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` makes a new figure.
        show_validation : bool, default=True
            Also draw the validation scores, on a twin axis.

        Returns
        -------
        display : TrainingHistoryDisplay
            The drawn display.
        """
        _import_pyplot("TrainingHistoryDisplay.from_estimator")
        estimators = _as_list(estimator)
        for est in estimators:
            check_is_fitted(est)
            if getattr(est, "loss_curve_", None) is None:
                raise ValueError(
                    f"{type(est).__name__} has no loss_curve_: only networks "
                    "trained epoch by epoch have a training history."
                )
        return cls(
            loss_curves=[np.asarray(est.loss_curve_) for est in estimators],
            validation_scores=[
                None
                if getattr(est, "validation_scores_", None) is None
                else np.asarray(est.validation_scores_)
                for est in estimators
            ],
            names=_names(names, estimators),
            colors=[_estimator_color(est) for est in estimators],
        ).plot(ax=ax, show_validation=show_validation)


# What each kind of alignment angle measures: the fitted attribute and the
# axis label.
_ALIGNMENT_KINDS = {
    "delta": ("alignment_", "angle to back-propagation's delta (degrees)"),
    "weight": ("weight_alignment_", "angle of feedback to forward weights (degrees)"),
}


class AlignmentDisplay:
    """Alignment angles of each hidden layer over training.

    Two kinds of angle, both recorded with ``track_alignment`` (see
    :class:`~skdfa.DFAClassifier`): ``"delta"``, between the learning rule's
    hidden delta (the layer's error signal) and the exact back-propagated
    delta of the same batch (``alignment_``; under 90 degrees the rule's
    delta is a descent direction for the layer's pre-activations), and
    ``"weight"``, between the feedback a hidden layer receives and the
    forward weights it stands in for (``weight_alignment_``). 0 degrees is
    back-propagation's direction, 90 degrees (drawn dotted) is no alignment.

    Parameters
    ----------
    alignments : list of array-like of shape (n_records, n_hidden_layers)
        Angles in degrees, one array per estimator (its ``alignment_`` or
        ``weight_alignment_``).
    steps : list of array-like of shape (n_records,)
        The update count of each record (its ``alignment_steps_``).
    names : list of str, default=None
        Estimator names for the legend; ``None`` numbers them.
    colors : list of (str or None), default=None
        One colour per estimator, its layers told apart by line style; where
        it is None (or ``colors`` is None), a single estimator's layers take
        matplotlib's successive colours. ``from_estimator`` gives each rule
        its colour, see :func:`rule_color`. An estimator whose colour an
        earlier one has is drawn with markers.
    kind : {"delta", "weight"}, default="delta"
        Which angle ``alignments`` holds (it labels the axis).

    Attributes
    ----------
    lines_ : list of list of matplotlib Line2D
        ``lines_[i][l]`` is estimator ``i``'s curve of hidden layer ``l``.
    ax_ : matplotlib Axes
        The axes.
    figure_ : matplotlib Figure
        The figure.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdfa import DFAClassifier
    >>> from skdfa.plotting import AlignmentDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DFAClassifier((32, 32), max_iter=3, track_alignment=5,
    ...                     random_state=0).fit(X / 16, y)
    >>> disp = AlignmentDisplay.from_estimator(clf)
    >>> [line.get_label() for line in disp.lines_[0]]
    ['layer 1', 'layer 2']
    >>> bool((disp.lines_[0][1].get_ydata() == clf.alignment_[:, 1]).all())
    True
    >>> disp = AlignmentDisplay.from_estimator(clf, kind="weight")
    >>> bool((disp.lines_[0][0].get_ydata() == clf.weight_alignment_[:, 0]).all())
    True
    """

    def __init__(self, *, alignments, steps, names=None, colors=None, kind="delta"):
        self.alignments = alignments
        self.steps = steps
        self.names = names
        self.colors = colors
        self.kind = kind

    def plot(self, *, ax=None):
        """Draw one curve per estimator and hidden layer.

        An estimator with a colour is drawn in it, its layers told apart by
        line style. Without colours, a single estimator's layers take
        successive colours, and several estimators take successive colours
        with line styles for the layers.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` makes a new figure.

        Returns
        -------
        display : AlignmentDisplay
            The display, with the drawn artists as attributes.
        """
        plt = _import_pyplot("AlignmentDisplay.plot")
        ax = _get_axes(plt, ax)
        several = len(self.alignments) > 1
        names = self.names if self.names is not None else [
            f"#{i + 1}" for i in range(len(self.alignments))
        ]
        colors = self.colors if self.colors is not None else [None] * len(self.alignments)
        self.lines_ = []
        for i, (angles, steps, name, color) in enumerate(
            zip(self.alignments, self.steps, names, colors)
        ):
            angles = np.asarray(angles)
            if color is None and several:
                color = f"C{i}"
            style = {} if color is None else {"color": color}
            if color is not None and color in colors[:i]:
                # Two estimators of one rule share its colour: the later one
                # gets markers (the line styles are the layers').
                style.update(marker="o", markersize=3)
            lines = []
            for l in range(angles.shape[1]):
                if color is not None:
                    style["linestyle"] = _LAYER_STYLES[l % len(_LAYER_STYLES)]
                label = f"{name}: layer {l + 1}" if several else f"layer {l + 1}"
                (line,) = ax.plot(steps, angles[:, l], label=label, **style)
                lines.append(line)
            self.lines_.append(lines)
        ax.axhline(90, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("update")
        ax.set_ylabel(_ALIGNMENT_KINDS[self.kind][1])
        ax.set_title("Alignment" if several else f"Alignment: {names[0]}")
        ax.legend(fontsize="small")
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, kind="delta", names=None, ax=None):
        """Build and draw the display from networks fitted with ``track_alignment``.

        Parameters
        ----------
        estimator : estimator or list of estimators
            Fitted with ``track_alignment`` set, so that ``alignment_``,
            ``weight_alignment_`` and ``alignment_steps_`` hold records.
        kind : {"delta", "weight"}, default="delta"
            Plot the angles between deltas (``alignment_``) or between
            feedback and forward weights (``weight_alignment_``).
        names : list of str, default=None
            Legend labels; ``None`` uses the class names (and rules).
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` makes a new figure.

        Returns
        -------
        display : AlignmentDisplay
            The drawn display.
        """
        _import_pyplot("AlignmentDisplay.from_estimator")
        if kind not in _ALIGNMENT_KINDS:
            raise ValueError(f"kind must be one of {sorted(_ALIGNMENT_KINDS)}, got {kind!r}.")
        attribute = _ALIGNMENT_KINDS[kind][0]
        estimators = _as_list(estimator)
        for est in estimators:
            check_is_fitted(est)
            alignment = getattr(est, attribute, None)
            if alignment is None or alignment.size == 0:
                raise ValueError(
                    f"{type(est).__name__} has no alignment records: fit it with "
                    "track_alignment=True (and at least one hidden layer)."
                )
        return cls(
            alignments=[getattr(est, attribute) for est in estimators],
            steps=[est.alignment_steps_ for est in estimators],
            names=_names(names, estimators),
            colors=[_estimator_color(est) for est in estimators],
            kind=kind,
        ).plot(ax=ax)
