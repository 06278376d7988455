"""
==============================
Alignment angles over training
==============================

How close is the DFA signal to the true gradient? With ``track_alignment``,
:class:`~skdfa.DFAClassifier` records, every few updates, the angle between
each hidden layer's delta (its error signal) under the learning rule and
back-propagation's delta for the same batch (see :ref:`dfa`). 90° means
unrelated, 0° means back-propagation's direction. Recording never changes the
training.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skdfa import DFAClassifier
from skdfa.plotting import AlignmentDisplay

X, y = load_digits(return_X_y=True)
X = X / 16

# %%
# Three hidden layers, an angle every 5 updates, 40 epochs, for DFA and for
# feedback alignment. ``tol=0`` trains all 40 epochs, which stop before the
# loss has converged: we look at the angles, not at the final model, so the
# ConvergenceWarning is silenced.
n_epochs = 40
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clfs = [
        DFAClassifier(
            hidden_layer_sizes=(64, 64, 64),
            rule=rule,
            learning_rate_init=0.01,
            max_iter=n_epochs,
            tol=0,
            track_alignment=5,
            random_state=0,
        ).fit(X, y)
        for rule in ["dfa", "fa"]
    ]
updates_per_epoch = int(np.ceil(len(X) / 200))  # batch_size="auto" is 200 here
print("angle of layers 1, 2, 3 (degrees) after epoch")
for clf in clfs:
    for epoch in [1, 10, 20, 40]:
        record = np.searchsorted(clf.alignment_steps_, epoch * updates_per_epoch, side="right") - 1
        print(f"  {clf.rule:>3}, epoch {epoch:>2}:", clf.alignment_[record].round(0))

# %%
# The angles start near 90° — random feedback is unrelated to the gradient —
# and fall fast during the first ten epochs, as the forward weights align with
# the feedback. After that they change slowly and stay far above 0°: the
# signal is a descent direction, not the gradient itself. Each panel is one
# rule, in its colour; the line styles are the layers.
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for clf, ax in zip(clfs, axes):
    AlignmentDisplay.from_estimator(clf, names=[clf.rule.upper()], ax=ax)
    ax.secondary_xaxis(
        "top", functions=(lambda u: u / updates_per_epoch, lambda e: e * updates_per_epoch)
    ).set_xlabel("epoch")
    ax.set_ylim(0, 100)
fig.tight_layout()
plt.show()
