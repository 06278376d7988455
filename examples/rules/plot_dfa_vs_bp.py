"""
========================================
DFA vs back-propagation: learning curves
========================================

The same network (two hidden layers of 64 ``tanh`` units) trained on the
digits by the four learning rules of :class:`~skdfa.DFAClassifier`:
back-propagation (``"bp"``), feedback alignment (``"fa"``), direct feedback
alignment (``"dfa"``) and direct random target projection (``"drtp"``). Only
``rule`` changes: for a given seed, the initial weights, the data order and the
optimizer are the same. We train one epoch at a time with ``partial_fit`` to
record the test accuracy after each epoch, for three seeds.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier
from skdfa.plotting import rule_color

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)
classes = np.unique(y)

# %%
# Each rule, three seeds, 20 epochs, with adam at ``learning_rate_init=0.01``
# (at the default 0.001, DFA needs several epochs before its loss moves).
rules = ["bp", "fa", "dfa", "drtp"]
seeds = [0, 1, 2]
n_epochs = 20
loss = {rule: [] for rule in rules}
accuracy = {rule: [] for rule in rules}
for rule in rules:
    for seed in seeds:
        clf = DFAClassifier(
            hidden_layer_sizes=(64, 64),
            rule=rule,
            learning_rate_init=0.01,
            random_state=seed,
        )
        scores = []
        for _ in range(n_epochs):
            clf.partial_fit(X_train, y_train, classes=classes)
            scores.append(clf.score(X_test, y_test))
        loss[rule].append(clf.loss_curve_)
        accuracy[rule].append(scores)
loss = {rule: np.array(curves) for rule, curves in loss.items()}
accuracy = {rule: np.array(curves) for rule, curves in accuracy.items()}

print("test accuracy, mean over seeds [min, max]")
print("rule  epoch 1              epoch 5              epoch 20")
for rule in rules:
    cells = [
        f"{acc.mean():.3f} [{acc.min():.3f}, {acc.max():.3f}]"
        for acc in accuracy[rule][:, [0, 4, n_epochs - 1]].T
    ]
    print(f"{rule:<5} " + "   ".join(cells))
print("training loss after epoch 1 (chance level: log 10 = 2.30):")
print({rule: round(float(loss[rule][:, 0].mean()), 2) for rule in rules})

# %%
# Back-propagation learns fastest. DFA and FA barely lower the loss during the
# first epoch, while the forward weights come to align with the fixed
# feedback, then catch up and end one to two points below back-propagation. DRTP,
# whose hidden layers see the targets but never the error, is the slowest.
# The lines are the means over the seeds, the bands their range.
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
epochs = np.arange(1, n_epochs + 1)
for rule in rules:
    color = rule_color(rule)
    for ax, values in [(ax_loss, loss[rule]), (ax_acc, accuracy[rule])]:
        ax.plot(epochs, values.mean(axis=0), color=color, label=rule)
        ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)
ax_loss.axhline(np.log(10), color="grey", linestyle=":", linewidth=1)
ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Loss (dotted: chance)")
ax_acc.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title="Accuracy")
ax_acc.legend(loc="lower right")
for ax in (ax_loss, ax_acc):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
fig.tight_layout()
plt.show()
