"""Tests of StackingDFA: scikit-learn's checks, seeds, parallel backends, accuracy."""

import subprocess
import sys

import numpy as np
import pytest
from joblib import parallel_config
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.decomposition import PCA
from sklearn.model_selection import ShuffleSplit, train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdfa import DFAClassifier, RDClassifier, StackingDFA
from skdfa._rules import RULES

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def _small_learner(**params):
    return DFAClassifier(
        hidden_layer_sizes=(8,), max_iter=10, learning_rate_init=3e-2, **params
    )


# Small learners and a short-trained head keep the checks fast; the head still
# reaches check_classifiers_train's accuracy.
@parametrize_with_checks(
    [
        StackingDFA(
            _small_learner(),
            n_estimators=3,
            final_estimator=DFAClassifier(
                hidden_layer_sizes=(), learning_rate_init=3e-2, max_iter=30
            ),
            random_state=0,
        )
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def tiny():
    return make_classification(
        n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=0
    )


def _fitted_outputs(clf, X, y):
    clf.fit(X, y)
    return clf.transform(X), clf.predict_proba(X)


def test_same_model_for_every_n_jobs_and_dask(tiny):
    X, y = tiny
    clf = StackingDFA(_small_learner(), n_estimators=4, random_state=0)
    expected = _fitted_outputs(clone(clf), X, y)

    def assert_same(outputs):
        for got, want in zip(outputs, expected):
            assert_array_equal(got, want)

    assert_same(_fitted_outputs(clone(clf).set_params(n_jobs=-1), X, y))
    # max_nbytes=0: the workers get X as a read-only memory map, so any
    # write to it would raise.
    with parallel_config(max_nbytes=0, mmap_mode="r"):
        assert_same(_fitted_outputs(clone(clf).set_params(n_jobs=2), X, y))

    distributed = pytest.importorskip("distributed")
    for processes, n_workers in [(False, 1), (True, 2)]:
        with (
            distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster),
            parallel_config(backend="dask"),
        ):
            assert_same(_fitted_outputs(clone(clf), X, y))


def _initial_weights_kept(**params):
    # SGD with a learning rate far below float precision leaves the weights
    # at their initial values, so the fitted learners show them.
    return DFAClassifier(
        hidden_layer_sizes=(8,),
        solver="sgd",
        momentum=0.0,
        learning_rate_init=1e-300,
        max_iter=1,
        **params,
    )


@pytest.mark.parametrize("vary", ["feedback", "all"])
def test_vary_feedback_or_all(tiny, vary):
    X, y = tiny
    clf = StackingDFA(
        _initial_weights_kept(), n_estimators=3, vary=vary, random_state=0
    ).fit(X, y)
    assert len(set(clf.feedback_random_states_)) == 3
    assert len(set(clf.random_states_)) == (1 if vary == "feedback" else 3)
    for est, state, feedback in zip(
        clf.estimators_, clf.random_states_, clf.feedback_random_states_
    ):
        assert (est.random_state, est.feedback_random_state) == (state, feedback)

    first, *others = clf.estimators_
    for est in others:
        assert not np.array_equal(est.feedback_[0], first.feedback_[0])
        same_init = all(
            np.array_equal(a, b)
            for a, b in zip(est.coefs_ + est.intercepts_, first.coefs_ + first.intercepts_)
        )
        assert same_init == (vary == "feedback")


def test_seeds_come_from_random_state(tiny):
    X, y = tiny
    fit = lambda seed: StackingDFA(  # noqa: E731
        _initial_weights_kept(), n_estimators=2, vary="all", random_state=seed
    ).fit(X, y)
    a, b, c = fit(0), fit(0), fit(np.random.RandomState(0))
    assert_array_equal(a.random_states_, b.random_states_)
    assert_array_equal(a.feedback_random_states_, b.feedback_random_states_)
    assert not np.array_equal(a.random_states_, c.random_states_)


@pytest.mark.parametrize("vary", ["feedback", "all"])
def test_seed_streams_are_independent(tiny, vary):
    X, y = tiny
    n = 4
    clf = StackingDFA(_small_learner(), n_estimators=n, vary=vary, random_state=7)
    clf.fit(X, y)
    # The documented derivation: SeedSequence(random_state) spawns three
    # streams, for the learners' weights, their feedback, and the head and cv.
    weights, feedback, other = np.random.SeedSequence(7).spawn(3)
    expected_weights = weights.generate_state(n if vary == "all" else 1)
    assert_array_equal(clf.random_states_, np.resize(expected_weights, n))
    assert_array_equal(clf.feedback_random_states_, feedback.generate_state(n))
    head_seed = clf.final_estimator_.random_state
    assert head_seed == other.generate_state(1)[0]
    # No seed of one stream reappears in another.
    streams = [set(clf.random_states_), set(clf.feedback_random_states_), {head_seed}]
    for i, a in enumerate(streams):
        for b in streams[i + 1 :]:
            assert not a & b


def test_feedback_is_uncorrelated_with_initial_weights(tiny):
    X, y = tiny
    learner = _initial_weights_kept()
    learner.set_params(hidden_layer_sizes=(64,))
    clf = StackingDFA(learner, n_estimators=3, random_state=0).fit(X, y)
    for est in clf.estimators_:
        # Both are uniform draws; from one stream, B would repeat W1's first
        # draws rescaled (correlation 1). Independent 192-value samples have
        # a correlation of about N(0, 0.07^2).
        B = est.feedback_[0].ravel()
        W = est.coefs_[0].ravel()[: B.size]
        assert abs(np.corrcoef(B, W)[0, 1]) < 0.3


def test_transform_and_feature_names(tiny):
    X, y = tiny
    clf = StackingDFA(_small_learner(), n_estimators=2, random_state=0).fit(X, y)
    X_meta = clf.transform(X)
    assert X_meta.shape == (120, 2 * 3)
    assert_array_equal(X_meta[:, 3:], clf.estimators_[1].transform(X))
    assert list(clf.get_feature_names_out()) == [
        f"stackingdfa_dfaclassifier{i}_{j}" for i in range(2) for j in range(3)
    ]
    assert_array_equal(clf.predict(X), clf.final_estimator_.predict(X_meta))

    clf.set_params(passthrough=True).fit(X, y)
    assert_array_equal(clf.transform(X)[:, 6:], X)
    assert list(clf.get_feature_names_out())[6:] == [f"x{i}" for i in range(6)]

    # Binary targets: one linear output per learner.
    binary = StackingDFA(_small_learner(), n_estimators=2, random_state=0)
    binary.fit(X, y == 0)
    assert list(binary.get_feature_names_out()) == [
        "stackingdfa_dfaclassifier0",
        "stackingdfa_dfaclassifier1",
    ]


def test_float32_stays_float32(tiny):
    X, y = tiny
    clf = StackingDFA(_small_learner(), n_estimators=2, random_state=0)
    clf.fit(X.astype(np.float32), y)
    assert clf.transform(X.astype(np.float32)).dtype == np.float32
    assert clf.final_estimator_.coefs_[0].dtype == np.float32


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_estimators": 0}, "n_estimators"),
        ({"vary": "weights"}, "vary"),
        ({"cv": "prefit"}, "cv"),
        ({"estimator": DFAClassifier(alpha=-1.0)}, "alpha"),
        ({"estimator": DFAClassifier().predict}, "estimator"),
        ({"estimator": PCA()}, "feedback_random_state"),
    ],
)
def test_invalid_parameters(tiny, params, match):
    X, y = tiny
    with pytest.raises(InvalidParameterError, match=match):
        StackingDFA(**params).fit(X, y)


def test_diverging_learner_is_named(tiny):
    X, y = tiny
    learner = DFAClassifier(
        hidden_layer_sizes=(8,), activation="relu", solver="sgd", learning_rate_init=1e300
    )
    clf = StackingDFA(learner, n_estimators=2, random_state=0)
    match = (
        r"Learner 0 \(random_state=\d+, feedback_random_state=\d+\) failed: "
        "Training diverged"
    )
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_cv_must_partition(tiny):
    X, y = tiny
    clf = StackingDFA(_small_learner(), n_estimators=2, cv=ShuffleSplit(2, random_state=0))
    with pytest.raises(ValueError, match="partition"):
        clf.fit(X, y)


def test_dask_is_not_imported():
    code = "import sys, skdfa; assert not {'dask', 'distributed'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, stratify=y, test_size=0.25, random_state=0)


def test_digits_stacking_beats_its_learners(digits):
    # Bounds from StackingDFA random_state 0-7 (and 0-2 for cv=5): the dense
    # head beats the best learner by 1.3 to 2.4 points (mean 1.75, standard
    # deviation 0.4), out-of-fold by 1.5 to 1.8; the RD head scores 1.3 to
    # 2.9 points below the dense head (mean 2.1, standard deviation 0.5).
    X_train, X_test, y_train, y_test = digits
    learner = DFAClassifier(hidden_layer_sizes=(64,), max_iter=10, learning_rate_init=1e-2)
    clf = StackingDFA(learner, n_estimators=10, random_state=0).fit(X_train, y_train)
    best_learner = max(est.score(X_test, y_test) for est in clf.estimators_)
    dense = clf.score(X_test, y_test)
    assert dense > best_learner + 0.005

    out_of_fold = clone(clf).set_params(cv=5).fit(X_train, y_train)
    assert out_of_fold.score(X_test, y_test) > best_learner + 0.005

    # An RD head has 120 parameters here to the dense head's 1010.
    rd_head = RDClassifier(hidden_layer_sizes=(), learning_rate_init=3e-2, max_iter=500)
    rd = clone(clf).set_params(final_estimator=rd_head).fit(X_train, y_train)
    assert 0 <= dense - rd.score(X_test, y_test) <= 0.035


# -- sample weights, metadata routing, progress ----------------------------------------


@pytest.fixture(scope="module")
def iris_without_class_2():
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y, (y != 2).astype(float)


@pytest.mark.parametrize("cv", [None, 3])
def test_sample_weight_reaches_learners_and_head_like_stackingclassifier(
    iris_without_class_2, cv
):
    from sklearn.ensemble import StackingClassifier
    from sklearn.neural_network import MLPClassifier

    X, y, sw = iris_without_class_2
    clf = StackingDFA(_small_learner(), n_estimators=2, cv=cv, random_state=0)
    clf.fit(X, y, sample_weight=sw)
    ref = StackingClassifier(
        [("mlp", MLPClassifier((8,), max_iter=50, random_state=0))], cv=cv or 3
    ).fit(X, y, sample_weight=sw)
    assert 2 not in ref.predict(X)
    assert 2 not in clf.predict(X)
    # Each learner is the learner fitted alone on the weighted data.
    alone = clone(clf.estimators_[1]).fit(X, y, sample_weight=sw)
    for a, b in zip(alone.coefs_, clf.estimators_[1].coefs_):
        assert_array_equal(a, b)
    if cv is not None:
        # The head is the head fitted on out-of-fold outputs of weighted folds.
        from sklearn.model_selection import StratifiedKFold

        blocks = []
        for est in clf.estimators_:
            block = np.empty((len(y), 3))
            for train, test in StratifiedKFold(cv).split(X, y):
                fold = clone(est).fit(X[train], y[train], sample_weight=sw[train])
                block[test] = fold.transform(X[test])
            blocks.append(block)
        head = clone(clf.final_estimator_).fit(np.hstack(blocks), y, sample_weight=sw)
        assert_array_equal(head.coefs_[0], clf.final_estimator_.coefs_[0])
    from sklearn.neighbors import KNeighborsClassifier

    knn = clone(clf).set_params(final_estimator=KNeighborsClassifier())
    with pytest.raises(TypeError, match="KNeighborsClassifier does not support sample"):
        knn.fit(X, y, sample_weight=sw)


def test_metadata_routing_into_learners_and_head(iris_without_class_2):
    from sklearn import config_context
    from sklearn.exceptions import UnsetMetadataPassedError
    from sklearn.model_selection import cross_validate

    X, y, sw = iris_without_class_2
    with config_context(enable_metadata_routing=True):
        clf = StackingDFA(
            _small_learner().set_fit_request(sample_weight=True),
            n_estimators=2,
            final_estimator=DFAClassifier(hidden_layer_sizes=(), learning_rate_init=3e-2)
            .set_fit_request(sample_weight=True),
            random_state=0,
        )
        routing = clf.get_metadata_routing()
        assert routing.consumes("fit", ["sample_weight"]) == {"sample_weight"}
        results = cross_validate(clf, X, y, params={"sample_weight": sw}, cv=3,
                                 return_estimator=True, return_indices=True)
        for fitted, train in zip(results["estimator"], results["indices"]["train"]):
            assert 2 not in fitted.predict(X)
            # The learner is the one fitted alone on its fold's weighted rows.
            learner = fitted.estimators_[0]
            alone = clone(learner).fit(X[train], y[train], sample_weight=sw[train])
            for a, b in zip(alone.coefs_, learner.coefs_):
                assert_array_equal(a, b)
        # The defaults request the weights; an explicit learner must.
        default = StackingDFA(n_estimators=1, random_state=0).fit(X, y, sample_weight=sw)
        assert 2 not in default.predict(X)
        unrequested = clone(clf).set_params(estimator=_small_learner())
        with pytest.raises(UnsetMetadataPassedError):
            unrequested.fit(X, y, sample_weight=sw)


def test_verbose_shows_each_learners_progress(tiny, capsys):
    X, y = tiny
    learner = _small_learner().set_params(max_iter=2)
    StackingDFA(learner, n_estimators=2, random_state=0, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "learner 0" in out and "learner 1" in out and "head" in out
    assert out.count("train loss") == 3  # two learners and the head


@pytest.mark.parametrize("rule", ["sdfa", "usf", "frsf", "brsf", "kp", "dkp"])
def test_learners_of_every_rule(tiny, rule):
    X, y = tiny
    clf = StackingDFA(_small_learner(rule=rule), n_estimators=2, vary="all", random_state=0)
    clf.fit(X, y)
    assert [est.rule for est in clf.estimators_] == [rule, rule]
    assert clf.transform(X).shape == (len(X), 2 * len(np.unique(y)))
    assert clf.score(X, y) > 0.5


@pytest.mark.parametrize("rule", sorted(RULES))
def test_vary_feedback_refuses_rules_whose_learners_would_be_identical(tiny, rule):
    X, y = tiny
    # Two learners that differ only in feedback_random_state, as vary="feedback" makes them.
    a, b = (
        _small_learner(rule=rule, random_state=0, feedback_random_state=seed).fit(X, y)
        for seed in (1, 2)
    )
    identical = np.array_equal(a.transform(X), b.transform(X))
    stacking = StackingDFA(_small_learner(rule=rule), n_estimators=2, random_state=0)
    if identical:
        with pytest.raises(ValueError, match=f"rule='{rule}' has no random feedback"):
            stacking.fit(X, y)
        stacking.set_params(vary="all").fit(X, y)  # different initial weights
    else:
        stacking.fit(X, y)
    assert identical == (rule in ("bp", "usf"))
