"""
===========================================
Stacking DFA networks: growing the ensemble
===========================================

:class:`~skdfa.StackingDFA` trains ``n_estimators`` copies of a small DFA
network that differ only in their random feedback (``vary="feedback"``: same
initial weights and data order) and a head on their stacked linear outputs
(see :ref:`stacking`). How does the accuracy grow with the number of members,
and how does the ensemble compare with a single network?
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier, StackingDFA
from skdfa.plotting import rule_color

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)

# %%
# Weak members: one hidden layer of 16 units, trained 15 epochs only, which
# is not enough to converge; their ConvergenceWarnings are silenced, since
# weak members are the point. The head is scikit-learn's
# :class:`~sklearn.linear_model.LogisticRegression`: the same model as the
# default dense softmax head, fitted to convergence by L-BFGS in a fraction of
# the time. ``n_jobs=-1`` would fit the members in parallel on all cores;
# members this small train faster than worker processes start, so we fit them
# one after the other. Three seeds for each size.
member = DFAClassifier(hidden_layer_sizes=(16,), max_iter=15)
head = LogisticRegression(max_iter=1000)
sizes = [1, 2, 4, 8]
seeds = [0, 1, 2]
stack_scores = np.empty((len(sizes), len(seeds)))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for i, n_estimators in enumerate(sizes):
        for j, seed in enumerate(seeds):
            stack = StackingDFA(
                member, final_estimator=head, n_estimators=n_estimators, random_state=seed
            ).fit(X_train, y_train)
            stack_scores[i, j] = stack.score(X_test, y_test)
for n_estimators, scores in zip(sizes, stack_scores):
    print(f"{n_estimators} member(s): test accuracy {scores.round(3)} (seeds {seeds})")

# %%
# The baseline: one DFA network with as many hidden units as the largest
# ensemble (8 x 16 = 128), trained until its accuracy on a held-out 10% of the
# training set stops improving.
single = np.array(
    [
        DFAClassifier(
            hidden_layer_sizes=(128,),
            learning_rate_init=0.01,
            early_stopping=True,
            random_state=seed,
        )
        .fit(X_train, y_train)
        .score(X_test, y_test)
        for seed in seeds
    ]
)
print(f"single network of 128 units: test accuracy {single.round(3)}")

# %%
# Networks that differ only in their feedback make a useful ensemble: the
# accuracy grows with ``n_estimators``, from weak single members to within
# about a point of one well-trained network. On the digits the single network
# of 128 units stays ahead of 8 stacked members of 16; what the ensemble adds
# is members that train independently, in parallel. Markers are the
# seeds, the line their mean.
fig, ax = plt.subplots(figsize=(6, 4))
color = rule_color("dfa")
ax.plot(sizes, stack_scores.mean(axis=1), "o-", color=color, label="StackingDFA, mean")
for j in range(len(seeds)):
    ax.plot(sizes, stack_scores[:, j], "o", color=color, alpha=0.4)
ax.axhspan(single.min(), single.max(), color="grey", alpha=0.3,
           label="one network of 128 units\n(range over seeds)")
ax.set_xscale("log")
ax.set_xticks(sizes, labels=[str(n) for n in sizes])
ax.set_xticks([], minor=True)
ax.set(
    xlabel="n_estimators (members of 16 units)",
    ylabel="test accuracy",
    ylim=(None, 1),
    title="StackingDFA on the digits (DFA members)",
)
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
