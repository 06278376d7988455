"""
===================================================
RD layers vs dense layers at equal parameter counts
===================================================

A random-diagonal (RD) layer ``d2 * (R @ (d1 * x)) + b`` has
``n_in + 2 * n_out`` parameters, so at a given budget an RD network can be far
wider than a dense one (see :ref:`rd_layers`). We train
:class:`~skdfa.RDClassifier` networks of growing width by DFA, and for each
a dense :class:`~skdfa.DFAClassifier` whose single hidden layer is chosen to
have the same number of parameters.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier, RDClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)
n_features, n_classes = X.shape[1], 10

# %%
# A dense network with one hidden layer of width h has
# (n_features + 1) * h + (h + 1) * n_classes parameters; we solve for h.
results = []
for width in [128, 512, 1024]:
    rd = RDClassifier(
        hidden_layer_sizes=(width,),
        rd_matrix="dct",
        learning_rate_init=0.01,
        max_iter=20,
        random_state=0,
    ).fit(X_train, y_train)
    dense_width = max(1, round((rd.n_params_ - n_classes) / (n_features + 1 + n_classes)))
    dense = DFAClassifier(
        hidden_layer_sizes=(dense_width,),
        learning_rate_init=0.01,
        max_iter=20,
        random_state=0,
    ).fit(X_train, y_train)
    results.append(
        (rd.n_params_, rd.score(X_test, y_test), dense.n_params_, dense.score(X_test, y_test))
    )
    print(
        f"RD {width:>4} units: {rd.n_params_:>5} params, "
        f"accuracy {results[-1][1]:.3f} | dense {dense_width:>3} units: "
        f"{dense.n_params_:>5} params, accuracy {results[-1][3]:.3f}"
    )

# %%
# On this small problem the dense network wins at every budget: a dense layer
# can represent any linear map, an RD layer only ``diag(d2) R diag(d1)``. The
# RD network's accuracy climbs with its width at a small cost in parameters,
# which is what makes very wide RD layers affordable.
rd_params, rd_acc, dense_params, dense_acc = zip(*results)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(rd_params, rd_acc, "o-", label="RD hidden layer (DFA)")
ax.plot(dense_params, dense_acc, "s--", label="dense hidden layer (DFA)")
ax.set(
    xscale="log",
    xlabel="trainable parameters",
    ylabel="test accuracy",
    title="Equal parameter budgets",
)
ax.legend()
fig.tight_layout()
plt.show()
