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
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier
from skdfa.plotting import TrainingHistoryDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)

# %%
rules = ["dfa", "fa", "drtp", "bp"]
clfs = [
    DFAClassifier(
        hidden_layer_sizes=(64, 64),
        rule=rule,
        weight_init="zeros",
        max_iter=25,
        random_state=0,
    ).fit(X_train, y_train)
    for rule in rules
]
for rule, clf in zip(rules, clfs):
    print(f"{rule:>4}: test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# Back-propagation's loss stays at that of a constant prediction (log 10):
# only the output biases learn. The other rules train the whole network.
disp = TrainingHistoryDisplay.from_estimator(clfs, names=rules)
disp.ax_.set_yscale("log")
disp.ax_.set_title("Training from zero weights")
disp.figure_.tight_layout()
plt.show()
