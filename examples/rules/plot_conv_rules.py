"""
==========================================
Learning rules on a convolutional network
==========================================

:class:`~skdfa.ConvDFAClassifier` trains convolution blocks and dense layers
with any learning rule. Here a small conv net learns the 8x8 digits under
back-propagation, direct feedback alignment (DFA), feedback alignment (FA)
and uniform sign-concordant feedback (uSF). The rules differ most on the
convolutions: DFA projects the output error straight onto each
convolution's output maps through a random matrix, FA passes it back
through random kernels, uSF through kernels that carry the forward
kernels' signs (see :ref:`dfa`).
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdfa import ConvDFAClassifier
from skdfa.plotting import rule_color

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, stratify=y, random_state=0)

# %%
# Two convolutions (8 kernels of 3x3, 2x2 max pooling, then 16 kernels of
# 3x3, which leaves 1x1 maps), a dense hidden layer of 32 units and the
# output. ``input_shape`` is inferred: 64 features are one 8x8 image. Every
# 5 updates, ``track_alignment`` records the angle between each learning
# layer's delta and back-propagation's for the same batch.
rules = ["bp", "dfa", "fa", "usf"]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clfs = {
        rule: ConvDFAClassifier(
            conv_layers=((8, 3), (16, 3)),
            pool_size=(2, 1),
            hidden_layer_sizes=(32,),
            rule=rule,
            learning_rate_init=0.01,
            max_iter=30,
            tol=0,
            track_alignment=5,
            random_state=0,
        ).fit(X_train, y_train)
        for rule in rules
    }
# ``alignment_`` has a column per hidden layer: conv 1, its pooling, conv 2,
# dense. The pooling learns nothing (DFA sends it no signal): it is left out.
columns = {"conv 1": 0, "conv 2": 2, "dense": 3}
layer_names = list(columns)
print("rule  test acc.  mean angle of the last 10 records (deg):", ", ".join(layer_names))
for rule, clf in clfs.items():
    angles = np.nanmean(clf.alignment_[-10:, list(columns.values())], axis=0)
    print(f"{rule:>4}  {clf.score(X_test, y_test):9.3f}  " + "  ".join(f"{a:6.1f}" for a in angles))

# %%
# Back-propagation's angles are 0° by definition. The panels show each rule's
# angle per layer over training. In the run printed above, the first
# convolution, farthest from the output, stays near 90° under DFA and FA: its
# signal is barely related to the gradient. uSF's sign kernels keep every
# layer under 45°, and uSF comes closest to back-propagation's accuracy.
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
for ax, (name, j) in zip(axes, columns.items()):
    for rule, clf in clfs.items():
        if rule == "bp":
            continue
        ax.plot(clf.alignment_steps_, clf.alignment_[:, j], color=rule_color(rule),
                label=rule.upper())
    ax.set_title(name)
    ax.set_xlabel("update")
    ax.set_ylim(0, 100)
axes[0].set_ylabel("angle to back-propagation (deg)")
axes[-1].legend()
fig.tight_layout()
plt.show()
