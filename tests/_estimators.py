"""Every public skdfa estimator, as tiny fast instances, for the reliability tests.

Estimators are discovered from ``skdfa.__all__``, so a new one is covered by
the property-based, persistence and determinism tests as soon as it is
exported.
"""

import inspect

from sklearn.base import BaseEstimator

import skdfa
from skdfa import DFAClassifier, RDClassifier, StackingDFA
from skdfa._rules import RULES

ESTIMATORS = sorted(
    (
        obj
        for obj in (getattr(skdfa, name) for name in skdfa.__all__)
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator)
    ),
    key=lambda cls: cls.__name__,
)
# The single networks (not meta-estimators): those with a training loop.
NETWORKS = [cls for cls in ESTIMATORS if "warm_start" in cls().get_params()]



def rules_of(Estimator):
    """The rules an estimator supports: RD layers have no dense weights for
    the rules that build their feedback from them."""
    if Estimator is RDClassifier:
        return sorted(name for name, rule in RULES.items() if "rd" in rule.layer_kinds)
    return sorted(RULES)


# Tiny nets and few epochs: every fit takes milliseconds. The conv
# classifier reads any row as a 1 x n_features image: 1x1 kernels fit it.
_TINY = {
    "conv_layers": ((2, 1),),
    "hidden_layer_sizes": (4,),
    "max_iter": 3,
    "random_state": 0,
    "n_estimators": 2,
}


def tiny(Estimator, **params):
    """A fast instance of ``Estimator``: tiny hidden layers, a few epochs,
    fixed seeds; meta-estimators get tiny learners and heads."""
    defaults = Estimator().get_params(deep=False)
    chosen = {name: value for name, value in _TINY.items() if name in defaults}
    if "estimator" in defaults:
        chosen["estimator"] = DFAClassifier(hidden_layer_sizes=(4,), max_iter=3)
    if "final_estimator" in defaults:
        chosen["final_estimator"] = DFAClassifier(
            hidden_layer_sizes=(), max_iter=3, random_state=0
        )
    return Estimator(**{**chosen, **params})


def tiny_instances():
    """``(id, estimator)`` for each discovered estimator, plus StackingDFA with
    an RD head (the 2017 ensemble)."""
    instances = [(cls.__name__, tiny(cls)) for cls in ESTIMATORS]
    rd_head = RDClassifier(hidden_layer_sizes=(), max_iter=3, random_state=0)
    instances.append(("StackingDFA-RDhead", tiny(StackingDFA, final_estimator=rd_head)))
    return instances


def trained_arrays(estimator):
    """The parameters and feedback matrices of a fitted estimator and of its
    fitted sub-estimators (learners, head), in a fixed order."""
    models = [estimator, *getattr(estimator, "estimators_", [])]
    models.append(getattr(estimator, "final_estimator_", None))
    arrays = []
    for model in models:
        if hasattr(model, "_fit_state"):
            arrays += [*model._fit_state.network.params, *model.feedback_]
    return arrays


def assert_bit_identical(first, second):
    """Two fitted estimators hold the same arrays, bit for bit."""
    a, b = trained_arrays(first), trained_arrays(second)
    assert a and len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()
