"""
==============================
Alignment angles over training
==============================

How close is the DFA update to the true gradient? With ``track_alignment``,
:class:`~skdfa.DFAClassifier` records, every few updates, the angle between
each hidden layer's DFA delta and back-propagation's delta for the same batch
(see :ref:`dfa`). 90° means unrelated, 0° means back-propagation's
direction. Recording never changes the training.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from skdfa import DFAClassifier
from skdfa.plotting import AlignmentDisplay

X, y = load_digits(return_X_y=True)
X = X / 16

# %%
# Three hidden layers, an angle every 5 updates, for DFA and for feedback
# alignment.
clfs = [
    DFAClassifier(
        hidden_layer_sizes=(64, 64, 64),
        rule=rule,
        max_iter=25,
        track_alignment=5,
        random_state=0,
    ).fit(X, y)
    for rule in ["dfa", "fa"]
]
for clf in clfs:
    print(f"{clf.rule}: final angles per layer", clf.alignment_[-1].round(1))

# %%
# The angles start near 90° — random feedback is unrelated to the gradient —
# and fall as the forward weights align with the feedback.
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for clf, ax in zip(clfs, axes):
    AlignmentDisplay.from_estimator(clf, names=[clf.rule.upper()], ax=ax)
fig.tight_layout()
plt.show()
