"""The displays draw exactly the fitted curves (rendered with Agg)."""

import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier

from skdfa import DFAClassifier
from skdfa.plotting import AlignmentDisplay, TrainingHistoryDisplay, rule_color

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:500] / 16).astype(np.float32), y[:500]


def _fit(est, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*digits)


@pytest.fixture(scope="module")
def history_estimators(digits):
    common = dict(max_iter=4, early_stopping=True, n_iter_no_change=10, random_state=0)
    return [
        _fit(DFAClassifier((16,), rule="dfa", **common), digits),
        _fit(MLPClassifier((16,), **common), digits),
        _fit(DFAClassifier((16,), rule="bp", max_iter=3, random_state=0), digits),
    ]


@pytest.fixture(scope="module")
def tracked(digits):
    return [
        _fit(DFAClassifier((12, 8), rule=rule, max_iter=2, batch_size=50,
                           track_alignment=3, random_state=0), digits)
        for rule in ["dfa", "fa"]
    ]


def test_training_history_draws_the_curves(history_estimators):
    disp = TrainingHistoryDisplay.from_estimator(
        history_estimators, names=["DFA", "sklearn", "BP"]
    )
    assert [line.get_label() for line in disp.loss_lines_] == ["DFA", "sklearn", "BP"]
    for line, est in zip(disp.loss_lines_, history_estimators):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(est.loss_curve_) + 1))
        np.testing.assert_array_equal(line.get_ydata(), est.loss_curve_)
    # Validation scores on the twin axis, dashed, in the loss curve's colour;
    # the third estimator has none.
    assert disp.ax_score_ is not None and disp.ax_score_ is not disp.ax_
    for line, score_line, est in zip(disp.loss_lines_[:2], disp.score_lines_, history_estimators):
        np.testing.assert_array_equal(score_line.get_ydata(), est.validation_scores_)
        assert score_line.axes is disp.ax_score_
        assert score_line.get_linestyle() == "--"
        assert score_line.get_color() == line.get_color()
    assert disp.score_lines_[2] is None
    assert disp.ax_.get_xlabel() == "epoch"
    assert [t.get_text() for t in disp.ax_.get_legend().get_texts()] == ["DFA", "sklearn", "BP"]
    assert disp.figure_ is disp.ax_.figure
    # Each rule in its own colour, scikit-learn's MLP in black.
    to_hex = matplotlib.colors.to_hex
    assert [to_hex(line.get_color()) for line in disp.loss_lines_] == [
        rule_color("dfa"), "#000000", rule_color("bp")
    ]


def test_rule_colors_are_distinct_and_cover_every_rule():
    from skdfa._rules import RULES

    colors = [rule_color(rule) for rule in RULES]
    assert len(set(colors)) == len(colors)
    assert rule_color("sklearn") not in colors
    with pytest.raises(ValueError, match="Unknown rule 'nope'"):
        rule_color("nope")


def test_estimators_of_one_rule_share_its_colour_and_differ_in_style(history_estimators):
    dfa = history_estimators[0]
    disp = TrainingHistoryDisplay.from_estimator([dfa, history_estimators[2], dfa])
    assert [line.get_color() for line in disp.loss_lines_] == [
        rule_color("dfa"), rule_color("bp"), rule_color("dfa")
    ]
    assert [line.get_linestyle() for line in disp.loss_lines_] == ["-", "-", ":"]


def test_alignment_of_one_rule_twice_adds_markers(tracked):
    disp = AlignmentDisplay.from_estimator([tracked[0], tracked[1], tracked[0]])
    assert [lines[0].get_color() for lines in disp.lines_] == [
        rule_color("dfa"), rule_color("fa"), rule_color("dfa")
    ]
    assert [lines[0].get_marker() for lines in disp.lines_] == ["None", "None", "o"]


def test_colors_without_a_known_rule_follow_the_cycle():
    to_hex = matplotlib.colors.to_hex
    disp = TrainingHistoryDisplay(loss_curves=[[2.0, 1.0], [3.0, 1.0]]).plot()
    assert [to_hex(line.get_color()) for line in disp.loss_lines_] == [to_hex("C0"), to_hex("C1")]


def test_training_history_single_estimator_default_name_and_given_ax(history_estimators):
    _, ax = plt.subplots()
    disp = TrainingHistoryDisplay.from_estimator(history_estimators[2], ax=ax)
    assert disp.ax_ is ax
    assert disp.loss_lines_[0].get_label() == "DFAClassifier (bp)"
    assert disp.ax_score_ is None and disp.score_lines_ == [None]
    no_scores = TrainingHistoryDisplay.from_estimator(history_estimators[0], show_validation=False)
    assert no_scores.ax_score_ is None


def test_training_history_direct_construction():
    disp = TrainingHistoryDisplay(loss_curves=[[3.0, 2.0, 1.5]]).plot()
    np.testing.assert_array_equal(disp.loss_lines_[0].get_ydata(), [3.0, 2.0, 1.5])
    assert disp.loss_lines_[0].get_label() == "#1"


def test_training_history_errors(history_estimators):
    with pytest.raises(ValueError, match="2 names for 3 estimators"):
        TrainingHistoryDisplay.from_estimator(history_estimators, names=["a", "b"])
    with pytest.raises(NotFittedError):
        TrainingHistoryDisplay.from_estimator(DFAClassifier())


def test_alignment_draws_each_layer(tracked):
    est = tracked[0]
    disp = AlignmentDisplay.from_estimator(est)
    assert est.alignment_.shape[1] == 2 and len(est.alignment_) > 3
    assert [line.get_label() for line in disp.lines_[0]] == ["layer 1", "layer 2"]
    # The rule's colour, the layers told apart by line style.
    assert [line.get_color() for line in disp.lines_[0]] == [rule_color("dfa")] * 2
    assert [line.get_linestyle() for line in disp.lines_[0]] == ["-", "--"]
    for l, line in enumerate(disp.lines_[0]):
        np.testing.assert_array_equal(line.get_xdata(), est.alignment_steps_)
        np.testing.assert_array_equal(line.get_ydata(), est.alignment_[:, l])
    # The 90-degree reference line.
    assert any(np.all(np.asarray(line.get_ydata()) == 90) for line in disp.ax_.get_lines())
    assert disp.ax_.get_title() == "Alignment: DFAClassifier (dfa)"


def test_alignment_weight_kind(tracked):
    disp = AlignmentDisplay.from_estimator(tracked, kind="weight", names=["DFA", "FA"])
    for lines, est in zip(disp.lines_, tracked):
        for l, line in enumerate(lines):
            np.testing.assert_array_equal(line.get_xdata(), est.alignment_steps_)
            np.testing.assert_array_equal(line.get_ydata(), est.weight_alignment_[:, l])
    assert "feedback" in disp.ax_.get_ylabel()
    assert "back-propagation" in AlignmentDisplay.from_estimator(tracked).ax_.get_ylabel()
    with pytest.raises(ValueError, match="kind must be one of"):
        AlignmentDisplay.from_estimator(tracked, kind="angle")


def test_alignment_several_estimators(tracked):
    disp = AlignmentDisplay.from_estimator(tracked, names=["DFA", "FA"])
    assert len(disp.lines_) == 2
    for lines, est in zip(disp.lines_, tracked):
        for l, line in enumerate(lines):
            np.testing.assert_array_equal(line.get_ydata(), est.alignment_[:, l])
            assert line.get_color() == rule_color(est.rule)
        assert [line.get_linestyle() for line in lines] == ["-", "--"]
    assert disp.lines_[1][0].get_label() == "FA: layer 1"


def test_alignment_without_colors_tells_layers_apart_by_color(tracked):
    est = tracked[0]
    to_hex = matplotlib.colors.to_hex
    disp = AlignmentDisplay(alignments=[est.alignment_], steps=[est.alignment_steps_]).plot()
    assert [to_hex(line.get_color()) for line in disp.lines_[0]] == [to_hex("C0"), to_hex("C1")]


def test_alignment_requires_tracking(history_estimators):
    with pytest.raises(ValueError, match="track_alignment=True"):
        AlignmentDisplay.from_estimator(history_estimators[0])
    with pytest.raises(ValueError, match="track_alignment=True"):
        AlignmentDisplay.from_estimator(history_estimators[1])


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tracked):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        AlignmentDisplay.from_estimator(tracked[0])
