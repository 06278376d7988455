"""Learning rules: how each hidden layer gets its error signal ``delta``.

Notation: row vectors; ``W_l`` maps layer ``l - 1`` to layer ``l`` (a layer's
``coef``), ``h_l`` is hidden layer ``l``'s activation, ``e`` the error at the
output pre-activations, ``dLoss/dA_L``, already weighted and divided by the
batch's total sample weight, ``w`` each sample's weight divided by that total
(``1 / n`` without weights), and ``f'(a_l)`` the derivative of hidden layer
``l``'s activation. The output layer always receives ``e`` itself (its exact
gradient); a rule only decides the hidden deltas:

- ``"bp"``:   delta_l = (delta_{l+1} @ W_{l+1}.T) * f'(a_l)   (back-propagation)
- ``"fa"``:   delta_l = (delta_{l+1} @ B_{l+1}) * f'(a_l)     (feedback alignment)
- ``"dfa"``:  delta_l = (e @ B_l) * f'(a_l)                   (direct feedback alignment)
- ``"drtp"``: delta_l = (y @ B_l) * f'(a_l)                   (direct random target projection)
- ``"sdfa"``: delta_l = ((sign(e) * w) @ B_l) * f'(a_l)       (sign-DFA)
- ``"usf"``, ``"frsf"``, ``"brsf"``, ``"kp"``: the ``"fa"`` path with a
  ``B_{l+1}`` built from, or learnt after, ``W_{l+1}`` (see each class);
- ``"dkp"``: the ``"dfa"`` path with learnt ``B_l``.

Below a convolution, the direct rules (``"dfa"``, ``"drtp"``, ``"sdfa"``)
take ``conv_feedback``: ``"map"``, ``"pooled"`` (Nøkland's code) or
``"kernel"`` (biotorch); see :class:`DirectRule`.

For ``"drtp"``, ``y`` is the (one-hot) target weighted like ``e``; a single
binary (logistic) column is coded -1/+1, so that both classes send a signal. ``"fa"``,
``"dfa"``, ``"drtp"`` and ``"sdfa"`` draw ``B`` once, at initialisation.

The rules live in three modules along their seams: ``_rule_api.py`` (what
every rule shares: :class:`LearningRule`, :class:`RuleState`,
:class:`DeltaContext`, :class:`FeedbackSampler`), ``_direct_rules.py``
(:class:`DirectRule` and its rules) and ``_layerwise_rules.py``
(:class:`LayerByLayerRule` and its rules). This one registers the built-in
rules (``RULES``) and resolves ``rule=`` (:func:`get_rule`).
"""

from ._direct_rules import (
    DirectFeedbackAlignment,
    DirectKolenPollack,
    DirectRandomTargetProjection,
    SignDirectFeedbackAlignment,
)
from ._layerwise_rules import (
    BackPropagation,
    BatchRandomSignSymmetry,
    FeedbackAlignment,
    FixedRandomSignSymmetry,
    KolenPollack,
    UniformSignSymmetry,
)
from ._rule_api import LearningRule

_BUILTIN = (
    BackPropagation, FeedbackAlignment, UniformSignSymmetry, FixedRandomSignSymmetry,
    BatchRandomSignSymmetry, KolenPollack, DirectFeedbackAlignment,
    DirectRandomTargetProjection, SignDirectFeedbackAlignment, DirectKolenPollack,
)

RULES = {cls.name: cls() for cls in _BUILTIN}
"""The built-in rules, by name (each a :class:`LearningRule` instance)."""


def get_rule(rule):
    """The :class:`LearningRule` that ``rule`` names or is.

    Parameters
    ----------
    rule : str or LearningRule
        A built-in rule's name (a key of ``RULES``) or a rule instance.

    Returns
    -------
    rule : LearningRule
        ``RULES[rule]`` for a name, ``rule`` itself for an instance.

    Raises
    ------
    ValueError
        For anything else, naming the built-in rules.

    Examples
    --------
    >>> from skdfa.rules import get_rule
    >>> rule = get_rule("dfa")
    >>> rule, rule.label, rule.color
    (DirectFeedbackAlignment(), 'DFA', '#ff7f0e')
    """
    if isinstance(rule, LearningRule):
        return rule
    if isinstance(rule, str):
        try:
            return RULES[rule]
        except KeyError:
            pass
    raise ValueError(
        f"Unknown learning rule {rule!r}: use one of {sorted(RULES)} or an instance "
        "of a skdfa.rules.LearningRule subclass."
    )
