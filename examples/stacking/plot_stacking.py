"""
===========================================
Stacking DFA networks: growing the ensemble
===========================================

:class:`~skdfa.StackingDFA` trains ``n_estimators`` copies of a small DFA
network that differ only in their random feedback (``vary="feedback"``: same
initial weights and data order) and a softmax head on their stacked linear
outputs (see :ref:`stacking`).
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier, StackingDFA

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)

# %%
# Weak members: one hidden layer of 16 units, 15 epochs. ``n_jobs=-1`` would fit
# the members in parallel on all cores; members this small train faster than
# worker processes start, so we fit them one after the other.
member = DFAClassifier(hidden_layer_sizes=(16,), max_iter=15)
sizes = [1, 2, 4, 8]
scores = {"feedback": [], "all": []}
for vary in scores:
    for n_estimators in sizes:
        stack = StackingDFA(
            member, n_estimators=n_estimators, vary=vary, random_state=0
        ).fit(X_train, y_train)
        scores[vary].append(stack.score(X_test, y_test))
    print(f"vary={vary!r}:", [f"{s:.3f}" for s in scores[vary]])

# %%
# Networks that differ only in their feedback already make a useful ensemble:
# the accuracy grows with ``n_estimators``. Varying the initial weights too
# (``vary="all"``) gives the members more ways to differ.
fig, ax = plt.subplots(figsize=(6, 4))
for vary, values in scores.items():
    ax.plot(sizes, values, "o-", label=f'vary="{vary}"')
ax.set(
    xscale="log",
    xticks=sizes,
    xticklabels=sizes,
    xlabel="n_estimators",
    ylabel="test accuracy",
    title="StackingDFA on the digits",
)
ax.legend()
fig.tight_layout()
plt.show()
