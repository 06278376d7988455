"""Learning rules: the public interface, and the built-in rules.

A learning rule decides how the hidden layers of a network get their error
signals. Pass a rule's name or an instance to any estimator's ``rule``
parameter; write your own by subclassing :class:`LearningRule` (see the user
guide's "Write your own learning rule").
"""

from ._rules import (
    RULES,
    BackPropagation,
    BatchRandomSignSymmetry,
    DeltaContext,
    DirectFeedbackAlignment,
    DirectKolenPollack,
    DirectRandomTargetProjection,
    FeedbackAlignment,
    FeedbackSampler,
    FixedRandomSignSymmetry,
    KolenPollack,
    LearningRule,
    RuleState,
    SignDirectFeedbackAlignment,
    UniformSignSymmetry,
    angle,
    get_rule,
)

__all__ = [
    "RULES",
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
