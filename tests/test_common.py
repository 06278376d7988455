"""sklearn's estimator checks over every rule of the MLP estimators."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdfa import DFAClassifier, DFARegressor
from skdfa._rules import RULES

# Every rule runs the full checks on the classifier; the regressor, whose
# engine is the same, runs the four original rules and one new rule of each
# family (direct, layer by layer): all ten on both would add a minute.
REGRESSOR_RULES = ["bp", "dfa", "drtp", "fa", "kp", "sdfa"]

# Small nets with a higher learning rate: the checks' accuracy thresholds are
# met in a few dozen epochs, so the whole matrix runs in seconds.
CHECK_INSTANCES = [
    Estimator(
        hidden_layer_sizes=(16,),
        rule=rule,
        learning_rate_init=0.01,
        max_iter=50,
        random_state=0,
    )
    for Estimator, rules in [(DFAClassifier, sorted(RULES)), (DFARegressor, REGRESSOR_RULES)]
    for rule in rules
]


def test_check_instances_cover_every_rule():
    covered = {(type(est), est.rule) for est in CHECK_INSTANCES}
    assert covered >= {(DFAClassifier, r) for r in RULES}
    assert {r for E, r in covered if E is DFARegressor} == set(REGRESSOR_RULES)


@parametrize_with_checks(CHECK_INSTANCES)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("Estimator", [DFAClassifier, DFARegressor])
def test_transformer_output_names(Estimator):
    import numpy as np

    X = np.random.RandomState(0).rand(20, 3)
    y = np.arange(20) % 3
    est = Estimator(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    names = est.get_feature_names_out()
    prefix = Estimator.__name__.lower()
    assert list(names) == [f"{prefix}{i}" for i in range(est.n_outputs_)]
