"""DFAClassifier and DFARegressor: real-data accuracy and estimator behaviour."""

import copy
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skdfa import ConvDFAClassifier, DFAClassifier, DFARegressor, RDClassifier
from skdfa._training import fit_stochastic

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.25, stratify=y, random_state=0)


# -- accuracy on real data ----------------------------------------------------


def test_dfa_one_hidden_layer_reaches_96_percent_on_digits(digits):
    X_train, X_test, y_train, y_test = digits
    clf = DFAClassifier((256,), learning_rate_init=3e-3, max_iter=60, random_state=0)
    assert clf.fit(X_train, y_train).score(X_test, y_test) >= 0.96


def test_dfa_trains_a_ten_layer_net_on_digits(digits):
    X_train, X_test, y_train, y_test = digits
    clf = DFAClassifier((100,) * 10, max_iter=40, random_state=0)
    assert clf.fit(X_train, y_train).score(X_test, y_test) >= 0.90


NEW_RULES = ["sdfa", "usf", "frsf", "brsf", "kp", "dkp"]


@pytest.mark.slow
@pytest.mark.parametrize("rule", NEW_RULES)
def test_new_rules_reach_94_percent_with_the_readme_recipe(digits, rule):
    # Measured, seed 0: sdfa 0.951, usf 0.976, frsf 0.976, brsf 0.976,
    # kp 0.980, dkp 0.976; sdfa has the least margin (seeds 1, 2: 0.947, 0.944).
    X_train, X_test, y_train, y_test = digits
    clf = DFAClassifier((256,), rule=rule, learning_rate_init=3e-3, max_iter=60, random_state=0)
    assert clf.fit(X_train, y_train).score(X_test, y_test) >= 0.94


# Sign-DFA's signal, sign(P - Y), is the same for every sample of a class and
# never shrinks: a common part pushes every hidden unit of every sample the
# same way, and in a deep tanh net the layers saturate and the net stays at
# chance (measured, seeds 0-2 at the other rules' settings: 0.10 to 0.44
# test accuracy; seed 0 with lr 3e-4, relu or logistic: about 0.10). A strong L2
# penalty holds the weights back; then it learns, slowly (seeds 0-2 with
# these settings: 0.942, 0.909, 0.938).
DEEP_SETTINGS = {"sdfa": dict(alpha=0.3, max_iter=80, tol=0, n_iter_no_change=100)}


@pytest.mark.slow
@pytest.mark.parametrize("rule", NEW_RULES)
def test_new_rules_train_four_hidden_layers(digits, rule):
    # Measured, lowest of seeds 0-1: usf 0.976, frsf 0.978, brsf 0.973,
    # kp 0.969.
    X_train, X_test, y_train, y_test = digits
    settings = dict(learning_rate_init=3e-3, max_iter=60, random_state=0)
    clf = DFAClassifier((128,) * 4, rule=rule, **{**settings, **DEEP_SETTINGS.get(rule, {})})
    assert clf.fit(X_train, y_train).score(X_test, y_test) >= 0.90


def test_bp_is_within_one_point_of_mlpclassifier(digits):
    X_train, X_test, y_train, y_test = digits
    settings = dict(hidden_layer_sizes=(256,), activation="tanh", max_iter=60, random_state=0)
    ours = DFAClassifier(rule="bp", **settings).fit(X_train, y_train).score(X_test, y_test)
    ref = MLPClassifier(solver="adam", **settings).fit(X_train, y_train).score(X_test, y_test)
    assert abs(ours - ref) <= 0.01


# (solver, schedule, learning_rate_init, power_t), with a learning rate at
# which each stops, under tol=0.05 and n_iter_no_change=2, far from a tie:
# every epoch's loss is more than 2% away from best_loss - tol.
STOPPING_SETTINGS = [
    ("sgd", "constant", 0.1, 0.5),
    ("sgd", "adaptive", 0.1, 0.5),
    ("sgd", "invscaling", 0.2, 0.25),
    ("adam", "constant", 1e-2, 0.5),
    ("adam", "invscaling", 1e-2, 0.5),
    ("adam", "adaptive", 1e-2, 0.5),
]


@pytest.mark.parametrize("solver, schedule, learning_rate_init, power_t", STOPPING_SETTINGS)
def test_bp_stops_and_learns_like_mlpclassifier(solver, schedule, learning_rate_init, power_t):
    X, y = load_digits(return_X_y=True)
    settings = dict(hidden_layer_sizes=(32,), activation="tanh", solver=solver,
                    learning_rate=schedule, learning_rate_init=learning_rate_init,
                    power_t=power_t, max_iter=40, random_state=0)
    # The same initial weights; the shuffles differ (skdfa draws two seeds
    # from the stream first), so the curves agree only up to sampling noise:
    # measured within 2.7% or, once the loss is small, 0.004.
    stoppings = [dict(tol=0.05, n_iter_no_change=2)]
    if schedule != "adaptive":  # inert at tol=0: it would repeat "constant"
        stoppings.append(dict(tol=0.0))
    for stopping in stoppings:
        ours = DFAClassifier(rule="bp", **settings, **stopping).fit(X / 16, y)
        ref = MLPClassifier(**settings, **stopping).fit(X / 16, y)
        assert ours.n_iter_ == ref.n_iter_
        assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=0.04, atol=0.006)
        if stopping["tol"] == 0:
            assert ours.n_iter_ == 40


def _initial_weights(Estimator, X, y, **params):
    """The initial weights: SGD at a rate far below float precision keeps them."""
    est = Estimator(solver="sgd", momentum=0.0, learning_rate_init=1e-300, max_iter=1,
                    random_state=0, **params)
    return est.fit(X, y).coefs_


@pytest.mark.parametrize(
    "activation, n_classes", [("tanh", 3), ("relu", 3), ("logistic", 3), ("relu", 2)]
)
def test_initial_weights_are_mlpclassifiers(activation, n_classes):
    X, y = _small_data()
    y = np.minimum(y, n_classes - 1)
    settings = dict(hidden_layer_sizes=(8, 4), activation=activation)
    ours = _initial_weights(DFAClassifier, X, y, rule="bp", **settings)
    ref = _initial_weights(MLPClassifier, X, y, **settings)
    for a, b in zip(ours, ref):
        assert_array_equal(a, b)


@pytest.mark.parametrize("n_targets", [1, 4])
def test_bp_regressor_learns_like_mlpregressor(n_targets):
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (300, 3))
    Y = np.column_stack([np.sin(k * X[:, 0]) + X[:, 1] * X[:, 2] for k in range(1, n_targets + 1)])
    settings = dict(hidden_layer_sizes=(16,), activation="tanh", learning_rate_init=1e-2,
                    max_iter=20, tol=0, random_state=0)
    ours = DFARegressor(rule="bp", **settings).fit(X, Y.squeeze())
    ref = MLPRegressor(**settings).fit(X, Y.squeeze())
    # As for the classifier: the same initial weights, different shuffles.
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=0.05)


def test_dfa_learns_from_zero_weights_and_bp_does_not(digits):
    X_train, X_test, y_train, y_test = digits

    def score(rule, seed):
        clf = DFAClassifier((64,), rule=rule, weight_init="zeros", max_iter=20, random_state=seed)
        return clf.fit(X_train, y_train).score(X_test, y_test)

    # Seeds 0-7 give 0.871 to 0.911 (mean 0.888, standard deviation 0.012).
    assert np.mean([score("dfa", seed) for seed in range(5)]) > 0.87
    # Zero hidden weights get zero back-propagated error (whatever the seed:
    # the zero weights are the same), so only the output bias learns.
    assert score("bp", 0) < 0.3


def test_regressor_fits_a_smooth_function():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (400, 2))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 0] * X[:, 1]])
    reg = DFARegressor((64,), learning_rate_init=1e-2, max_iter=300, tol=0, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (400, 2)
    assert reg.score(X, y) > 0.9


# -- reproducibility and seeds --------------------------------------------------


def _small_data(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, 5))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)


@pytest.mark.parametrize("dropout", [0.0, (0.2, 0.3)])
def test_same_seed_gives_bit_identical_models(dropout):
    X, y = _small_data()
    fits = [
        DFAClassifier((8, 8), dropout=dropout, max_iter=5, random_state=3).fit(X, y)
        for _ in range(2)
    ]
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        assert_array_equal(a, b)


def _angles_by_hand(clf, X, y):
    """Each hidden layer's angle between DFA's and back-propagation's deltas
    over the whole of (X, y), from the fitted weights and feedback."""
    W, b, B = clf.coefs_, clf.intercepts_, clf.feedback_
    H = [X]
    for l in range(len(W) - 1):
        H.append(np.tanh(H[-1] @ W[l] + b[l]))
    A = H[-1] @ W[-1] + b[-1]
    P = np.exp(A - A.max(axis=1, keepdims=True))
    e = (P / P.sum(axis=1, keepdims=True) - np.eye(3)[y]) / len(y)
    angles, bp = [], e
    for l in reversed(range(len(W) - 1)):
        bp = (bp @ W[l + 1].T) * (1 - H[l + 1] ** 2)
        dfa = (e @ B[l]) * (1 - H[l + 1] ** 2)
        cos = np.sum(dfa * bp) / np.linalg.norm(dfa) / np.linalg.norm(bp)
        angles.insert(0, np.degrees(np.arccos(cos)))
    return angles


def test_alignment_tracking_does_not_change_training():
    X, y = _small_data()
    plain = DFAClassifier((8, 8), max_iter=5, random_state=0).fit(X, y)
    tracked = DFAClassifier((8, 8), max_iter=5, random_state=0, track_alignment=2).fit(X, y)
    for a, b in zip(plain.coefs_, tracked.coefs_):
        assert_array_equal(a, b)
    n_updates = 5 * 1  # one batch of 120 samples per epoch
    assert tracked.alignment_.shape == (len(range(0, n_updates, 2)), 2)
    assert_array_equal(tracked.alignment_steps_, [0, 2, 4])
    assert plain.alignment_.shape == (0, 2)
    # The record at update k is the angle for the weights after k updates,
    # which a fit of k epochs (one batch each) ends with; the sum over the
    # batch does not depend on its shuffled order.
    for row, step in zip(tracked.alignment_[1:], [2, 4]):
        after = DFAClassifier((8, 8), max_iter=step, random_state=0).fit(X, y)
        assert_allclose(row, _angles_by_hand(after, X, y), rtol=1e-10)


def test_feedback_seed_changes_feedback_but_not_initial_weights():
    X, y = _small_data()
    # A negligible learning rate leaves the initial weights visible after fit.
    fits = [
        DFAClassifier((8,), learning_rate_init=1e-12, max_iter=1, random_state=0,
                      feedback_random_state=seed).fit(X, y)
        for seed in [None, 1, 2]
    ]
    for other in fits[1:]:
        np.testing.assert_allclose(other.coefs_[0], fits[0].coefs_[0], atol=1e-9)
        assert not np.allclose(other.feedback_[0], fits[0].feedback_[0])
    assert not np.allclose(fits[1].feedback_[0], fits[2].feedback_[0])
    # The default feedback is derived from random_state, so it is reproducible.
    again = DFAClassifier((8,), max_iter=1, random_state=0).fit(X, y)
    assert_array_equal(again.feedback_[0], fits[0].feedback_[0])


def test_feedback_scale_and_distribution():
    X, y = _small_data()
    uniform = DFAClassifier((400,), max_iter=1, random_state=0).fit(X, y).feedback_[0]
    assert np.abs(uniform).max() <= 1 / np.sqrt(400)
    assert np.abs(uniform).max() > 0.9 / np.sqrt(400)
    gauss = DFAClassifier((400,), max_iter=1, random_state=0, feedback_distribution="gaussian",
                          feedback_scale=0.5).fit(X, y).feedback_[0]
    assert gauss.std() == pytest.approx(0.5, rel=0.1)



def _glorot_half_width(shape):
    # torch's xavier_uniform_ bound: fans are shape[1] and shape[0] times the kernel's size.
    receptive = int(np.prod(shape[2:]))
    return np.sqrt(6.0 / ((shape[0] + shape[1]) * receptive))


@pytest.mark.parametrize("rule", ["dfa", "fa", "frsf"])
def test_feedback_scale_glorot_draws_each_matrix_with_glorot_variance(rule):
    X, y = _small_data()
    # 400 / 300 hidden units: enough entries that the drawn extremes reach the bound.
    dense = DFAClassifier((400, 300), rule=rule, max_iter=1, random_state=0,
                          feedback_scale="glorot").fit(X, y)
    conv = ConvDFAClassifier(conv_layers=((8, 3), (20, 3)), pool_size=1, hidden_layer_sizes=(),
                             input_shape=(1, 8, 8), rule=rule, max_iter=1, random_state=0,
                             feedback_scale="glorot").fit(load_digits().data[:60], load_digits().target[:60])
    for B in dense.feedback_ + conv.feedback_:
        bound = _glorot_half_width(B.shape)
        assert np.abs(B).max() <= bound
        assert np.abs(B).max() > 0.97 * bound
    gauss = DFAClassifier((400,), rule=rule, max_iter=1, random_state=0, feedback_scale="glorot",
                          feedback_distribution="gaussian").fit(X, y).feedback_[0]
    assert gauss.std() == pytest.approx(np.sqrt(2.0 / sum(gauss.shape)), rel=0.05)

# -- dtypes, input handling ---------------------------------------------------------


@pytest.mark.parametrize("Estimator", [DFAClassifier, DFARegressor])
def test_float32_is_kept_end_to_end_and_X_is_not_written(Estimator):
    X, y = _small_data()
    X = X.astype(np.float32)
    X.setflags(write=False)
    est = Estimator((8,), max_iter=3, random_state=0, dropout=(0.1, 0.1)).fit(X, y)
    assert all(p.dtype == np.float32 for p in est.coefs_ + est.intercepts_ + est.feedback_)
    assert est.transform(X).dtype == np.float32
    if Estimator is DFAClassifier:
        assert est.predict_proba(X).dtype == np.float32


def test_sparse_csr_input_matches_dense():
    X, y = _small_data()
    X[X < 0.5] = 0
    dense = DFAClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    sparse = DFAClassifier((8,), max_iter=5, random_state=0).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), atol=1e-8)


def test_pickle_round_trip_keeps_predictions():
    X, y = _small_data()
    clf = DFAClassifier((8,), max_iter=5, random_state=0).fit(X.astype(np.float32), y)
    loaded = pickle.loads(pickle.dumps(clf))
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.coefs_[0].dtype == np.float32


def test_pipeline_and_grid_search_over_rule_and_feedback_scale():
    X, y = _small_data(200)
    # SGD, whose steps scale with the gradients: under adam, which divides
    # them by their running scale, the feedback scale would hardly matter.
    pipe = make_pipeline(
        StandardScaler(),
        DFAClassifier((16,), solver="sgd", learning_rate_init=0.1, max_iter=30, random_state=0),
    )
    grid = GridSearchCV(
        pipe,
        {"dfaclassifier__rule": ["dfa", "bp"], "dfaclassifier__feedback_scale": ["auto", 2.0]},
        cv=3,
        scoring="neg_log_loss",
        n_jobs=2,
    ).fit(X, y)
    results = {
        (params["dfaclassifier__rule"], params["dfaclassifier__feedback_scale"]): score
        for params, score in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"])
    }
    assert len(results) == 4
    # The feedback scale changes DFA's models and none of back-propagation's.
    assert results["dfa", "auto"] != results["dfa", 2.0]
    assert results["bp", "auto"] == results["bp", 2.0]
    assert grid.best_estimator_.score(X, y) > 0.8
    assert grid.predict(X).shape == (200,)


# -- classifier outputs ---------------------------------------------------------------


def test_output_activations_and_probabilities():
    X, y = _small_data()
    softmax = DFAClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    sigmoid = DFAClassifier((8,), max_iter=5, random_state=0, output_activation="sigmoid").fit(X, y)
    assert softmax.out_activation_ == "softmax"
    assert sigmoid.out_activation_ == "logistic"
    for clf in (softmax, sigmoid):
        proba = clf.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
        assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
        np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
        assert_array_equal(clf.decision_function(X), clf.transform(X))


def test_binary_and_multilabel_targets():
    X, y = _small_data()
    binary = DFAClassifier((8,), max_iter=5, random_state=0).fit(X, np.where(y > 0, "yes", "no"))
    assert binary.n_outputs_ == 1 and binary.out_activation_ == "logistic"
    assert binary.decision_function(X).shape == (120,)
    assert set(binary.predict(X)) <= {"no", "yes"}
    assert binary.predict_proba(X).shape == (120, 2)
    X_ml, Y_ml = make_multilabel_classification(n_samples=100, n_classes=4, random_state=0)
    X_ml = X_ml / X_ml.max()
    multilabel = DFAClassifier((16,), learning_rate_init=1e-2, max_iter=200, random_state=0)
    multilabel.fit(X_ml, Y_ml)
    assert multilabel.out_activation_ == "logistic"
    assert_array_equal(multilabel.predict(X_ml), multilabel.decision_function(X_ml) > 0)
    assert multilabel.score(X_ml, Y_ml) > 0.6  # subset accuracy (MLPClassifier: 0.76)


def test_n_params_formula():
    X, y = _small_data()
    clf = DFAClassifier((8, 4), max_iter=1, random_state=0).fit(X, y)
    assert clf.n_params_ == (5 * 8 + 8) + (8 * 4 + 4) + (4 * 3 + 3)
    assert clf.n_layers_ == 4


# -- fitting protocol -----------------------------------------------------------------


def test_partial_fit_needs_classes_and_names_unknown_labels():
    X, y = _small_data()
    clf = DFAClassifier((8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and clf.t_ == 120
    with pytest.raises(ValueError, match=re.escape("not in `self.classes_`: [7]")):
        clf.partial_fit(X, np.where(y == 2, 7, y))
    # String labels, as str and as object arrays.
    names = np.array(["a", "b", "c"])[y]
    clf = DFAClassifier((8,), random_state=0).partial_fit(X, names, classes=["a", "b", "c"])
    unknown = np.where(names == "c", "d", names)
    for labels in (unknown, unknown.astype(object)):
        with pytest.raises(ValueError, match=re.escape("not in `self.classes_`: ['d']")):
            clf.partial_fit(X, labels)


def test_partial_fit_epochs_equal_fit_epochs():
    X, y = _small_data()
    settings = dict(hidden_layer_sizes=(8,), random_state=0, tol=0, n_iter_no_change=100)
    fitted = DFAClassifier(max_iter=3, **settings).fit(X, y)
    partial = DFAClassifier(**settings)
    for _ in range(3):
        partial.partial_fit(X, y, classes=[0, 1, 2])
    for a, b in zip(fitted.coefs_, partial.coefs_):
        assert_array_equal(a, b)


def test_warm_start_continues_like_one_fit():
    X, y = _small_data()
    settings = dict(hidden_layer_sizes=(8,), random_state=0, tol=0, n_iter_no_change=100)
    once = DFAClassifier(max_iter=6, **settings).fit(X, y)
    twice = DFAClassifier(max_iter=3, warm_start=True, **settings).fit(X, y).fit(X, y)
    for a, b in zip(once.coefs_, twice.coefs_):
        assert_array_equal(a, b)
    assert twice.loss_curve_ == once.loss_curve_


@pytest.mark.parametrize("Estimator", [DFAClassifier, DFARegressor])
def test_early_stopping_keeps_the_first_best_epoch(Estimator):
    X, y = _small_data(300)
    target = y if Estimator is DFAClassifier else X[:, 0] - X[:, 1] * X[:, 2]
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=3e-2, early_stopping=True,
                  max_iter=60, n_iter_no_change=3, random_state=0)
    clf = Estimator(**params).fit(X, target)
    scores = np.asarray(clf.validation_scores_)
    best_epoch = int(np.argmax(scores)) + 1  # the first of tied best scores
    # Training ran past the best epoch, so restoring it is visible.
    assert best_epoch < clf.n_iter_ == len(scores)
    # It stopped where MLPClassifier's rule says, applied to these scores:
    # after more than n_iter_no_change epochs without a gain of tol.
    best, count = -np.inf, 0
    for epoch, score in enumerate(scores, 1):
        count = count + 1 if score < best + clf.tol else 0
        best = max(best, score)
        if count > clf.n_iter_no_change:
            break
    assert epoch == clf.n_iter_
    if Estimator is DFAClassifier:
        # Accuracy on 30 validation samples plateaus: later epochs tie the best.
        assert (scores[best_epoch:] == scores.max()).any()
    # The reference stops at the best epoch, so it needs no restoring: its
    # last epoch is its best (it has no later ties to choose from). It keeps
    # early_stopping so that it draws the same validation split from the
    # random stream, and then the same shuffles: a fit without it would
    # train on other rows in another order.
    ref = Estimator(**{**params, "max_iter": best_epoch}).fit(X, target)
    assert ref.n_iter_ == best_epoch
    for a, b in zip(clf.coefs_ + clf.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.tobytes() == b.tobytes()
    assert_array_equal(clf.predict(X), ref.predict(X))
    assert clf.best_loss_ is None


def test_shuffle_false_trains_on_batches_in_data_order():
    X, y = _small_data()
    settings = dict(hidden_layer_sizes=(8,), random_state=0, shuffle=False)
    fitted = DFAClassifier(batch_size=30, max_iter=1, **settings).fit(X, y)
    # The same updates, one partial_fit per batch of 30 rows in order.
    stepwise = DFAClassifier(**settings)
    for start in range(0, 120, 30):
        stepwise.partial_fit(X[start : start + 30], y[start : start + 30], classes=[0, 1, 2])
    for a, b in zip(fitted.coefs_ + fitted.intercepts_, stepwise.coefs_ + stepwise.intercepts_):
        assert_array_equal(a, b)
    shuffled = DFAClassifier(batch_size=30, max_iter=1, **{**settings, "shuffle": True})
    assert not np.array_equal(shuffled.fit(X, y).coefs_[0], fitted.coefs_[0])


def test_normal_weight_init_draws_standard_normal_weights_and_zero_biases():
    X, y = _small_data()
    # A learning rate far below float precision keeps the initial weights.
    clf = DFAClassifier((8, 4), weight_init="normal", solver="sgd", momentum=0.0,
                        learning_rate_init=1e-300, max_iter=1, random_state=3).fit(X, y)
    rng = np.random.RandomState(3)
    for coef, shape in zip(clf.coefs_, [(5, 8), (8, 4), (4, 3)]):
        assert_array_equal(coef, rng.standard_normal(shape))
    for intercept in clf.intercepts_:  # zero, moved by about 1e-300
        assert_allclose(intercept, 0, atol=1e-290)


def test_warm_start_with_new_classes_is_a_clear_error():
    X, y = _small_data()
    clf = DFAClassifier((8,), max_iter=2, warm_start=True, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=re.escape(
        "warm_start can only be used where `y` has the same classes as in the previous "
        "call to fit. Previously got [0 1 2], `y` has [0 1 5]"
    )):
        clf.fit(X, np.where(y == 2, 5, y))


def test_partial_fit_with_another_number_of_outputs_is_a_clear_error():
    X, y = _small_data()
    reg = DFARegressor((8,), random_state=0).partial_fit(X, X[:, :2])
    with pytest.raises(ValueError, match="y has 3 outputs, but DFARegressor was fitted with 2"):
        reg.partial_fit(X, X[:, :3])


def test_too_small_validation_set_is_a_clear_error():
    X, y = _small_data(20)
    clf = DFARegressor((8,), early_stopping=True, validation_fraction=0.05)
    with pytest.raises(ValueError, match="The validation set is too small"):
        clf.fit(X, X[:, 0])


def test_verbose_prints_one_row_per_epoch(capsys):
    X, y = _small_data()
    DFAClassifier((8,), max_iter=3, random_state=0, verbose=True, track_alignment=True).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["epoch", "train", "loss", "angle", "(deg)", "dur", "(s)"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]


# -- bad input and divergence ------------------------------------------------------------


@pytest.mark.parametrize(
    "params, name",
    [
        ({"hidden_layer_sizes": (8, -1)}, "hidden_layer_sizes"),
        ({"rule": "backprop"}, "rule"),
        ({"dropout": (0.1, 0.2, 0.3)}, "dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"feedback_scale": 0}, "feedback_scale"),
        ({"weight_init": "he"}, "weight_init"),
        ({"solver": "newton"}, "solver"),  # "lbfgs" is valid since issue 21
    ],
)
def test_invalid_parameters_name_the_parameter(params, name):
    X, y = _small_data()
    with pytest.raises(InvalidParameterError, match=name):
        DFAClassifier(**params).fit(X, y)


def test_divergence_stops_with_a_clear_error_and_finite_weights():
    X, _ = _small_data()
    X = X.astype(np.float32)
    reg = DFARegressor((8,), solver="sgd", learning_rate_init=10, max_iter=50,
                       n_iter_no_change=50, random_state=0)
    with pytest.raises(ValueError, match="diverged.*Lower learning_rate_init"):
        reg.fit(X, X[:, 0] * 100)
    assert all(np.isfinite(c).all() for c in reg.coefs_)
    assert np.isfinite(reg.predict(X)).all()


# -- rule="bp" is MLPClassifier / MLPRegressor -----------------------------------------


@pytest.mark.parametrize("activation", ["logistic", "tanh"])
@pytest.mark.parametrize("target", ["binary", "multiclass"])
@pytest.mark.parametrize(
    "solver, learning_rate",
    [("sgd", "invscaling"), ("adam", "invscaling"), ("adam", "adaptive")],
)
def test_bp_trains_exactly_like_mlpclassifier(activation, target, solver, learning_rate):
    # Same initial weights (the Glorot factor of the hidden activation in
    # every layer), same gradients, and schedules on sgd only: without
    # shuffling, the two fits agree to rounding.
    X, y = _small_data()
    y = y > 0 if target == "binary" else y
    settings = dict(
        hidden_layer_sizes=(7, 5), activation=activation, solver=solver,
        learning_rate=learning_rate, learning_rate_init=0.05, power_t=0.3,
        shuffle=False, batch_size=50, max_iter=8, random_state=3,
    )
    ours = DFAClassifier(rule="bp", **settings).fit(X, y)
    ref = MLPClassifier(**settings).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_multioutput_loss_is_averaged_over_outputs_like_mlpregressor():
    X, _ = _small_data()
    Y = np.column_stack([X[:, 0], 2 * X[:, 1], X[:, 2] * X[:, 3], np.sin(X[:, 4])])
    settings = dict(hidden_layer_sizes=(7,), activation="tanh", solver="sgd",
                    learning_rate_init=0.01,
                    alpha=0.1, shuffle=False, max_iter=6, random_state=0)
    ours = DFARegressor(rule="bp", **settings).fit(X, Y)
    ref = MLPRegressor(**settings).fit(X, Y)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-10)
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# -- early stopping on small data, verbose output -----------------------------------------


def test_early_stopping_splits_tiny_multiclass_data_like_mlpclassifier(monkeypatch):
    from sklearn.datasets import load_iris

    import skdfa._training

    X, y = load_iris(return_X_y=True)
    settings = dict(early_stopping=True, validation_fraction=0.01, max_iter=3, random_state=0)
    ref = MLPClassifier(**settings).fit(X, y)  # 2 validation samples, 3 classes
    clf = DFAClassifier(**settings).fit(X, y)
    assert len(clf.validation_scores_) == len(ref.validation_scores_) == 3
    # Where stratification works, it is used: the validation part holds
    # every class in proportion.
    split = skdfa._training.train_test_split
    validation_rows = []

    def recording_split(*args, **kwargs):
        train, val = split(*args, **kwargs)
        validation_rows.append(val)
        return train, val

    monkeypatch.setattr(skdfa._training, "train_test_split", recording_split)
    DFAClassifier(**{**settings, "validation_fraction": 0.2}).fit(X, y)
    assert_array_equal(np.bincount(y[validation_rows[0]]), [10, 10, 10])


def test_verbose_table_over_partial_fit_calls_and_large_losses(capsys):
    X, y = _small_data()
    clf = DFAClassifier((8,), random_state=0, verbose=True, track_alignment=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(3):
            clf.partial_fit(X, y, classes=[0, 1, 2])
        # Zero weights under "bp": zero deltas, angles undefined (NaN).
        DFAClassifier((8,), rule="bp", weight_init="zeros", random_state=0, verbose=True,
                      track_alignment=1, max_iter=2).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("train loss") == 2  # one table per partial_fit run, one per fit
    assert "nan" not in out
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    # Epochs without a measurement (every 10 updates) leave the angle blank.
    assert len(lines[2].split()) == 4 and len(lines[3].split()) == 3
    DFARegressor((4,), max_iter=2, random_state=0, verbose=True, early_stopping=True,
                 learning_rate_init=1e-6).fit(X, X[:, 0] * 1e8)
    header, rule, *rows = capsys.readouterr().out.splitlines()[:4]
    assert len(rule) == len(header) and all(len(row) == len(header) for row in rows)
    assert "e+" in rows[0]


# -- warm start after set_params; the fitted attributes are the model ----------------------


def test_warm_start_uses_changed_activation_solver_and_learning_rate_like_mlpclassifier():
    X, y = _small_data()
    settings = dict(hidden_layer_sizes=(7,), activation="tanh", shuffle=False, max_iter=3,
                    random_state=0, warm_start=True)
    ours = DFAClassifier(rule="bp", **settings).fit(X, y)
    ref = MLPClassifier(**settings).fit(X, y)
    changes = dict(activation="relu", solver="sgd", learning_rate_init=0.05)
    ours.set_params(**changes).fit(X, y)
    ref.set_params(**changes).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_rebound_weights_and_changed_rule_carry_into_a_warm_start():
    X, y = _small_data()
    settings = dict(hidden_layer_sizes=(7,), activation="tanh", solver="sgd", shuffle=False,
                    max_iter=2, random_state=0, warm_start=True)
    ref = MLPClassifier(**settings).fit(X, y)
    ours = DFAClassifier(rule="dfa", **{**settings, "random_state": 1}).fit(X, y)
    ours.coefs_ = [c.copy() for c in ref.coefs_]
    ours.intercepts_ = [i.copy() for i in ref.intercepts_]
    # A new learning rate builds a new optimizer, in both.
    ours.set_params(rule="bp", learning_rate_init=0.05).fit(X, y)
    ref.set_params(learning_rate_init=0.05).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_changed_rule_gets_the_feedback_of_a_fresh_fit_and_shapes_cannot_change():
    X, y = _small_data()
    settings = dict(hidden_layer_sizes=(8, 6), max_iter=2, random_state=0)
    warm = DFAClassifier(rule="dfa", warm_start=True, **settings).fit(X, y)
    warm.set_params(rule="fa").fit(X, y)
    fresh = DFAClassifier(rule="fa", **settings).fit(X, y)
    assert [B.shape for B in warm.feedback_] == [(6, 8), (3, 6)]
    for a, b in zip(warm.feedback_, fresh.feedback_):
        assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=\(8, 6\).*\(8, 5\)"):
        warm.set_params(hidden_layer_sizes=(8, 5)).fit(X, y)
    partial = DFAClassifier(**settings).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="output_activation"):
        partial.set_params(output_activation="sigmoid").partial_fit(X, y)


def test_rebinding_fitted_attributes_changes_predictions_like_mlpclassifier():
    X, y = _small_data()
    settings = dict(hidden_layer_sizes=(7,), activation="tanh", solver="sgd", shuffle=False,
                    max_iter=2, random_state=0)
    ours = DFAClassifier(rule="bp", **settings).fit(X, y)
    ref = MLPClassifier(**settings).fit(X, y)
    rng = np.random.RandomState(0)
    new_coefs = [rng.standard_normal(c.shape) for c in ref.coefs_]
    ours = pickle.loads(pickle.dumps(ours))
    ref.coefs_ = [c.copy() for c in new_coefs]
    ours.coefs_ = [c.copy() for c in new_coefs]
    ref.intercepts_[1] = np.ones(3)
    ours.intercepts_[1] = np.ones(3)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-12)
    with pytest.raises(ValueError, match=re.escape("coefs_[0] has shape (4, 7)")):
        ours.coefs_[0] = np.zeros((4, 7))
        ours.predict(X)


def test_assigned_arrays_are_the_ones_training_updates():
    X, y = _small_data()
    clf = DFAClassifier((7,), max_iter=2, random_state=0, warm_start=True).fit(X, y)
    coefs = clf.coefs_
    clf.predict(X)
    mine = np.zeros_like(coefs[1])
    coefs[1] = mine  # the list held before predict is still the model's
    as_float32 = [i.astype(np.float32) for i in clf.intercepts_]
    clf.intercepts_ = as_float32
    clf.fit(X, y)
    assert clf.coefs_[1] is mine and np.abs(mine).sum() > 0  # trained in place
    assert clf.intercepts_[0].dtype == np.float64 and clf.intercepts_[0] is not as_float32[0]
    assert np.abs(clf.intercepts_[0] - as_float32[0]).max() > 0


@pytest.mark.parametrize("Estimator, settings", [
    (DFAClassifier, dict(hidden_layer_sizes=(8, 4))),
    (RDClassifier, dict(hidden_layer_sizes=(8, 4))),
    (ConvDFAClassifier, dict(conv_layers=((3, 2),), pool_size=1, input_shape=(1, 2, 2),
                             hidden_layer_sizes=(4,))),
])
def test_glorot_zero_bias_init_keeps_glorot_weights_and_zeroes_the_biases(Estimator, settings):
    X = np.random.RandomState(0).uniform(size=(30, 4))
    y = np.arange(30) % 3
    fitted = {}
    for init in ("glorot", "glorot_zero_bias"):
        # A learning rate far below float precision keeps the initial weights.
        fitted[init] = Estimator(**settings, weight_init=init, solver="sgd", momentum=0.0,
                                 learning_rate_init=1e-300, max_iter=1, random_state=3,
                                 activation="tanh").fit(X, y)
    glorot, zero_bias = fitted["glorot"], fitted["glorot_zero_bias"]
    if Estimator is RDClassifier:  # d1 = 1 and a constant d2, in both
        for a, b in zip(glorot.diagonals_, zero_bias.diagonals_):
            assert_array_equal(a[0], b[0])
            assert_array_equal(a[1], b[1])
    else:  # the first layer's weights are the first draw of the stream: the same in both
        assert_array_equal(glorot.coefs_[0], zero_bias.coefs_[0])
    for coef in getattr(zero_bias, "coefs_", []):
        fan_in, fan_out = (coef.shape[0], coef.shape[1]) if coef.ndim == 2 else (
            coef[0].size, coef.shape[0] * coef[0, 0].size)
        bound = np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(coef).max() <= bound and np.abs(coef).max() > bound / 2
    for intercept in zero_bias.intercepts_:
        assert_allclose(intercept, 0, atol=1e-290)
    assert all(np.abs(b).max() > 1e-3 for b in glorot.intercepts_)


def test_training_loop_runs_from_its_arguments_alone():
    # fit_stochastic reads the parameters from a TrainingSettings and records
    # into a TrainingRecords, never the estimator: driven directly on a copy
    # of a fitted model, it continues as the estimator's own warm start does,
    # and the estimator publishes what it recorded.
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    est = DFAClassifier(
        (8,), max_iter=2, warm_start=True, random_state=0, early_stopping=True,
        n_iter_no_change=100, tol=0, dropout=0.1, track_alignment=3,
    )
    est.fit(X, y)
    twin = copy.deepcopy(est)
    est.fit(X, y)
    records = twin._training_records()
    Y = twin._label_binarizer.transform(y).astype(X.dtype)
    fit_stochastic(twin._fit_state, twin._training_settings(), records, X, Y, None, False)
    assert records.loss_curve == est.loss_curve_
    assert records.validation_scores == est.validation_scores_
    assert (records.n_iter, records.t, records.loss) == (est.n_iter_, est.t_, est.loss_)
    assert records.best_validation_score == est.best_validation_score_
    assert twin._fit_state.optimizer.t == est._fit_state.optimizer.t
    for a, b in zip(twin._fit_state.network.params, est._fit_state.network.params):
        assert_array_equal(a, b)


@pytest.mark.parametrize("y", [
    np.array([3, 1, 2, 3, 0]), np.array(["b", "a", "c", "a"], dtype=object),
    np.array([2.0, 1.0, 4.0, 1.0]),
])
def test_multiclass_targets_are_coded_as_label_binarizer_codes_them(y):
    # The classifiers one-hot code multiclass labels themselves (_binarize):
    # LabelBinarizer's coding, dtype included, also for a call that sees a
    # subset of the classes (partial_fit).
    from sklearn.preprocessing import LabelBinarizer

    from skdfa._classifier import _binarize

    binarizer = LabelBinarizer().fit(y)
    for labels in (y, y[:2], y[-1:]):
        expected = binarizer.transform(labels)
        coded = _binarize(binarizer, labels)
        assert coded.dtype == expected.dtype
        assert_array_equal(coded, expected)
