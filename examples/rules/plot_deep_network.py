"""
=================================
A 20-layer network trained by DFA
=================================

In DFA every hidden layer receives the output error through its own fixed
matrix, one step away, however deep the network: no signal has to travel back
through the layers above. Here a stack of 20 hidden ``tanh`` layers of 32
units is trained on the digits by DFA and by back-propagation, with the same
initial weights and settings (adam, batches of 32, ``learning_rate_init=0.001``),
for three seeds.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier
from skdfa.plotting import rule_color

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)

# %%
# 10 epochs per fit, which is not enough for either rule to converge: we
# compare the training so far, and silence the ConvergenceWarning. DFA also
# records its alignment angles every 50 updates.
n_epochs = 10
fits = {"bp": [], "dfa": []}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for rule in fits:
        for seed in [0, 1, 2]:
            fits[rule].append(
                DFAClassifier(
                    hidden_layer_sizes=(32,) * 20,
                    rule=rule,
                    batch_size=32,
                    max_iter=n_epochs,
                    track_alignment=50 if rule == "dfa" else False,
                    random_state=seed,
                ).fit(X_train, y_train)
            )
for rule, clfs in fits.items():
    scores = [clf.score(X_test, y_test) for clf in clfs]
    losses = [clf.loss_curve_[-1] for clf in clfs]
    print(
        f"{rule:>3}: test accuracy {np.round(scores, 3)}, "
        f"final training loss {np.round(losses, 2)} (seeds 0, 1, 2)"
    )
# The angle of one batch is noisy: average the last three records.
angles = np.array([clf.alignment_[-3:].mean(axis=0) for clf in fits["dfa"]])
print("DFA's angles at the end, layers 1 to 20, mean over seeds:")
print(angles.mean(axis=0).round(0))
print(f"smallest and largest over layers and seeds: {angles.min():.0f}, {angles.max():.0f}")

# %%
# Back-propagation trains this deep stack faster than DFA, for every seed:
# adam rescales each layer's update, so its gradient is not too small to use
# here. DFA learns too, but slowly. The right panel shows why: after 10 epochs
# the angles between DFA's hidden deltas and back-propagation's are still
# close to the 90° of an unrelated direction, in every layer (the printed
# range). The signal reaches every layer, but a deep stack of narrow layers
# aligns with the feedback slowly. Compare the shallow networks of the other
# examples, whose angles fall to 40-60° within ten epochs.
fig, (ax_loss, ax_angle) = plt.subplots(1, 2, figsize=(11, 4))
epochs = np.arange(1, n_epochs + 1)
for rule, clfs in fits.items():
    for i, clf in enumerate(clfs):
        ax_loss.plot(
            epochs, clf.loss_curve_, color=rule_color(rule), label=rule if i == 0 else None
        )
ax_loss.set(
    xlabel="epoch", ylabel="training loss", ylim=(0, None),
    title="20 hidden layers of 32 tanh units (3 seeds)",
)
ax_loss.legend()
layers = np.arange(1, angles.shape[1] + 1)
ax_angle.plot(layers, angles.mean(axis=0), "o-", color=rule_color("dfa"), label="dfa, mean")
ax_angle.fill_between(layers, angles.min(axis=0), angles.max(axis=0),
                      color=rule_color("dfa"), alpha=0.2, label="dfa, range over seeds")
ax_angle.axhline(90, color="grey", linestyle=":", linewidth=1)
ax_angle.set(
    xlabel="hidden layer", ylabel="angle to back-propagation's delta (degrees)",
    xticks=[1, 5, 10, 15, 20],
    ylim=(0, 100), title=f"DFA's alignment after {n_epochs} epochs",
)
ax_angle.legend(loc="lower right")
fig.tight_layout()
plt.show()
