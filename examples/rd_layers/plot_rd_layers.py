"""
===================================================
RD layers vs dense layers at equal parameter counts
===================================================

A random-diagonal (RD) layer ``d2 * (R @ (d1 * x)) + b`` has
``n_in + 2 * n_out`` parameters, so at a given budget an RD network can be far
wider than a dense one (see :ref:`rd_layers`). Does the width pay? We train
:class:`~skdfa.RDClassifier` networks of growing width by DFA, and for each a
dense :class:`~skdfa.DFAClassifier` whose single hidden layer is chosen to have
the same number of parameters, for two seeds.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier, RDClassifier
from skdfa.plotting import rule_color

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)
n_features, n_classes = X.shape[1], 10

# %%
# A dense network with one hidden layer of width h has
# (n_features + 1) * h + (h + 1) * n_classes parameters; we solve for h. Each
# network trains 20 epochs, the same for both kinds; not all have converged
# by then, so we silence the ConvergenceWarning.
widths = [128, 512, 1024]
seeds = [0, 1]
rd_params, dense_params, dense_widths = [], [], []
rd_acc = np.empty((len(widths), len(seeds)))
dense_acc = np.empty((len(widths), len(seeds)))
common = dict(learning_rate_init=0.01, max_iter=20)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for i, width in enumerate(widths):
        for j, seed in enumerate(seeds):
            rd = RDClassifier(
                hidden_layer_sizes=(width,), rd_matrix="gaussian", random_state=seed, **common
            ).fit(X_train, y_train)
            dense_width = max(1, round((rd.n_params_ - n_classes) / (n_features + 1 + n_classes)))
            dense = DFAClassifier(
                hidden_layer_sizes=(dense_width,), random_state=seed, **common
            ).fit(X_train, y_train)
            rd_acc[i, j], dense_acc[i, j] = rd.score(X_test, y_test), dense.score(X_test, y_test)
        rd_params.append(rd.n_params_)
        dense_params.append(dense.n_params_)
        dense_widths.append(dense_width)
        print(
            f"RD {width:>4} units: {rd.n_params_:>5} params, accuracy {rd_acc[i].round(3)} | "
            f"dense {dense_width:>3} units: {dense.n_params_:>5} params, accuracy {dense_acc[i].round(3)}"
        )

# %%
# On this small problem the dense network wins at every budget, for both
# seeds: a dense layer can represent any linear map, an RD layer only
# ``diag(d2) R diag(d1)``. The RD network's accuracy climbs with its width at
# a cost of three parameters per unit, so very wide RD layers stay cheap; but
# at equal parameter counts they are the less accurate choice here. Markers
# are the seeds, lines their mean; both networks learn by DFA.
fig, ax = plt.subplots(figsize=(6, 4))
color = rule_color("dfa")
for params, acc, marker, style, label in [
    (rd_params, rd_acc, "o", "-", "RD hidden layer"),
    (dense_params, dense_acc, "s", "--", "dense hidden layer"),
]:
    ax.plot(params, acc.mean(axis=1), style, marker=marker, color=color, label=label)
    for j in range(len(seeds)):
        ax.plot(params, acc[:, j], marker, color=color, linestyle="none", alpha=0.6)
for params, acc, width in zip(rd_params, rd_acc.mean(axis=1), widths):
    ax.annotate(f"{width} units", (params, acc), textcoords="offset points", xytext=(5, -12))
for params, acc, width in zip(dense_params, dense_acc.mean(axis=1), dense_widths):
    ax.annotate(f"{width} units", (params, acc), textcoords="offset points", xytext=(5, -14))
ax.set(
    xscale="log",
    xlabel="trainable parameters",
    ylabel="test accuracy",
    ylim=(0, 1),
    title="Equal parameter budgets (DFA)",
)
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
