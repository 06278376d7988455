"""scikit-learn estimators trained by Direct Feedback Alignment (DFA) and
other learning rules that avoid back-propagation."""

from ._mlp import DFAClassifier, DFARegressor
from ._show_versions import show_versions

__version__ = "0.1.0"

__all__ = [
    "DFAClassifier",
    "DFARegressor",
    "show_versions",
    "__version__",
]
