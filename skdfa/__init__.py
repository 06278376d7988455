"""scikit-learn estimators trained by Direct Feedback Alignment (DFA) and
other learning rules that avoid back-propagation."""

from ._conv_estimator import ConvDFAClassifier
from ._mlp import DFAClassifier, DFARegressor
from ._rd import RDClassifier
from ._show_versions import show_versions
from ._stacking import StackingDFA

__version__ = "0.2.0.dev0"

__all__ = [
    "ConvDFAClassifier",
    "DFAClassifier",
    "DFARegressor",
    "RDClassifier",
    "StackingDFA",
    "show_versions",
    "__version__",
]
