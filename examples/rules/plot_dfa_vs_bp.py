"""
========================================
DFA vs back-propagation: learning curves
========================================

The same network (two hidden layers of 64 ``tanh`` units) trained on the
digits by the four learning rules of :class:`~skdfa.DFAClassifier`:
back-propagation (``"bp"``), feedback alignment (``"fa"``), direct feedback
alignment (``"dfa"``) and direct random target projection (``"drtp"``). Only
``rule`` changes: the initial weights, the data order and the optimizer are the
same. We train one epoch at a time with ``partial_fit`` to record the test
accuracy after each epoch.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)
classes = np.unique(y)

# %%
# Train each rule for 30 epochs, scoring after each one.
n_epochs = 30
curves = {}
for rule in ["bp", "fa", "dfa", "drtp"]:
    clf = DFAClassifier(hidden_layer_sizes=(64, 64), rule=rule, random_state=0)
    accuracy = []
    for _ in range(n_epochs):
        clf.partial_fit(X_train, y_train, classes=classes)
        accuracy.append(clf.score(X_test, y_test))
    curves[rule] = (clf.loss_curve_, accuracy)
    print(f"{rule:>4}: test accuracy {accuracy[-1]:.3f}")

# %%
# Back-propagation learns fastest; DFA and FA follow a few points behind, and
# DRTP, whose hidden layers never see the error, learns slowest.
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
epochs = np.arange(1, n_epochs + 1)
for rule, (loss, accuracy) in curves.items():
    ax_loss.plot(epochs, loss, label=rule)
    ax_acc.plot(epochs, accuracy, label=rule)
ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Loss")
ax_acc.set(xlabel="epoch", ylabel="test accuracy", ylim=(0.5, 1), title="Accuracy")
ax_acc.legend()
fig.tight_layout()
plt.show()
