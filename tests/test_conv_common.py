"""sklearn's estimator checks for ConvDFAClassifier, one instance per rule.

The checks' data have a few features: each row is read as a 1 x n_features
image (``input_shape=None``), so the conv blocks use 1x1 kernels and no
pooling. The last instance is biotorch's form of DFA.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdfa import ConvDFAClassifier
from skdfa._rules import RULES, DirectFeedbackAlignment

CHECK_INSTANCES = [
    ConvDFAClassifier(
        conv_layers=((4, 1),),
        pool_size=1,
        hidden_layer_sizes=(16,),
        activation="tanh",
        rule=rule,
        learning_rate_init=0.01,
        max_iter=50,
        random_state=0,
    )
    for rule in sorted(RULES)
] + [
    # biotorch's DFA: two blocks, so that the first learns through the
    # second's feedback kernel.
    ConvDFAClassifier(
        conv_layers=((4, 1), (3, 1)),
        pool_size=1,
        hidden_layer_sizes=(16,),
        activation="tanh",
        rule=DirectFeedbackAlignment(conv_feedback="kernel"),
        learning_rate_init=0.01,
        max_iter=50,
        random_state=0,
    )
]


@parametrize_with_checks(CHECK_INSTANCES)
def test_sklearn_compatible_conv_estimator(estimator, check):
    check(estimator)
