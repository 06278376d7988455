"""Learning rules: the public interface, and the built-in rules.

A learning rule decides how the hidden layers of a network get their error
signals. Pass a rule's name or an instance to any estimator's ``rule``
parameter. Write a variant of a built-in rule by subclassing one of the two
family bases, :class:`DirectRule` (the output's signal projected to every
layer: DFA, DRTP, sDFA, DKP) or :class:`LayerByLayerRule` (a signal passed back
through every layer: BP, FA, the sign rules, KP), and overriding one public
hook; a rule of a new kind subclasses :class:`LearningRule` (see the user
guide's "Write your own learning rule").
"""

from ._direct_rules import (
    DirectFeedbackAlignment,
    DirectKolenPollack,
    DirectRandomTargetProjection,
    DirectRule,
    SignDirectFeedbackAlignment,
)
from ._layerwise_rules import (
    BackPropagation,
    BatchRandomSignSymmetry,
    FeedbackAlignment,
    FixedRandomSignSymmetry,
    KolenPollack,
    LayerByLayerRule,
    UniformSignSymmetry,
)
from ._rule_api import (
    AlignmentShapeWarning,
    DeltaContext,
    FeedbackSampler,
    LearningRule,
    RuleState,
    angle,
)
from ._rules import RULES, get_rule

__all__ = [
    "RULES",
    "AlignmentShapeWarning",
    "DirectRule",
    "LayerByLayerRule",
    "BackPropagation",
    "BatchRandomSignSymmetry",
    "DeltaContext",
    "DirectFeedbackAlignment",
    "DirectKolenPollack",
    "DirectRandomTargetProjection",
    "FeedbackAlignment",
    "FeedbackSampler",
    "FixedRandomSignSymmetry",
    "KolenPollack",
    "LearningRule",
    "RuleState",
    "SignDirectFeedbackAlignment",
    "UniformSignSymmetry",
    "angle",
    "get_rule",
]
