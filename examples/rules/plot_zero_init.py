"""
==========================
Learning from zero weights
==========================

With every weight initialised to zero, back-propagation cannot train the
hidden layers: their deltas are products with the zero weights above them, so
they stay zero. Rules with fixed random feedback send every hidden layer a
non-zero signal from the first batch, so DFA learns from zeros
(``weight_init="zeros"``). This needs an activation whose derivative at 0 is
not 0: ``tanh`` here.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier
from skdfa.plotting import TrainingHistoryDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)

# %%
# The first 25 epochs of each rule. The rules that learn have not converged by
# then, and say so with a ConvergenceWarning: we silence it, since we compare
# the start of training, not final models.
rules = ["bp", "fa", "dfa", "drtp"]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clfs = [
        DFAClassifier(
            hidden_layer_sizes=(64, 64),
            rule=rule,
            weight_init="zeros",
            learning_rate_init=0.01,
            max_iter=25,
            random_state=0,
        ).fit(X_train, y_train)
        for rule in rules
    ]
for rule, clf in zip(rules, clfs):
    hidden_weights = sum(np.abs(W).sum() for W in clf.coefs_[:-1])
    print(
        f"{rule:>4}: {clf.n_iter_} epochs, final loss {clf.loss_curve_[-1]:.3f}, "
        f"test accuracy {clf.score(X_test, y_test):.3f}, "
        f"sum of |hidden weights| {hidden_weights:.1f}"
    )
print(f"loss of a constant prediction: log 10 = {np.log(10):.3f}")

# %%
# Back-propagation's hidden weights never leave zero and its loss stays at
# that of a constant prediction; it stops after ``n_iter_no_change`` epochs
# without improvement. The other rules train the whole network.
disp = TrainingHistoryDisplay.from_estimator(clfs, names=rules)
disp.ax_.set_yscale("log")
disp.ax_.set_title("Training from zero weights")
disp.figure_.tight_layout()
plt.show()
