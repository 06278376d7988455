"""
=================================
Training on PyTorch tensors (GPU)
=================================

skdfa's estimators train on PyTorch tensors through scikit-learn's array API
switch (see :ref:`array_api`): the network, its fitted attributes and its
predictions live on the tensors' device. This example uses a GPU when PyTorch
sees one and the CPU otherwise; it needs ``pip install -e ".[torch]"`` and
``SCIPY_ARRAY_API=1`` set before scikit-learn is imported, which its first
lines do.

We fit the same :class:`~skdfa.DFAClassifier` on numpy arrays and on tensors
and compare the two models: the initial weights and the feedback matrices
are drawn with numpy from ``random_state`` in both cases. With
``shuffle=False`` the batches come in the same order too, so the two models
differ only by floating-point rounding. (With ``shuffle=True``, the default,
torch draws each epoch's order of the rows on the tensors' device: the two
fits then agree in distribution, not step for step.)
"""

# %%
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy and sklearn are imported

import matplotlib.pyplot as plt
import numpy as np
import sklearn
import torch
from matplotlib.ticker import MaxNLocator
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils._array_api import move_estimator_to

from skdfa import DFAClassifier
from skdfa.plotting import rule_color

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    (X / 16).astype(np.float32), y, stratify=y, random_state=0
)
device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"torch {torch.__version__}, device: {device}")

# %%
# The same estimator, once on numpy arrays and once on tensors. Inside
# ``config_context(array_api_dispatch=True)``, the tensors' namespace and
# device carry through ``fit``, ``predict`` and ``score``.
params = dict(hidden_layer_sizes=(256,), learning_rate_init=1e-2, shuffle=False, random_state=0)
clf_numpy = DFAClassifier(**params).fit(X_train, y_train)

X_train_t = torch.asarray(X_train, device=device)
y_train_t = torch.asarray(y_train, device=device)
X_test_t = torch.asarray(X_test, device=device)
y_test_t = torch.asarray(y_test, device=device)
with sklearn.config_context(array_api_dispatch=True):
    clf_torch = DFAClassifier(**params).fit(X_train_t, y_train_t)
    proba = clf_torch.predict_proba(X_test_t)
    accuracy_torch = clf_torch.score(X_test_t, y_test_t)

print(f"predict_proba returns a {type(proba).__name__} on {proba.device}, "
      f"dtype {proba.dtype}; the first layer's weights are on {clf_torch.coefs_[0].device}")
print(f"epochs: numpy {clf_numpy.n_iter_}, torch {clf_torch.n_iter_}")
print(f"test accuracy: numpy {clf_numpy.score(X_test, y_test):.3f}, torch {accuracy_torch:.3f}")

# %%
# Both fits follow the same path: their loss curves overlap, and their
# weights differ by float32 rounding that accumulates over the updates.
# ``move_estimator_to`` brings the tensor model back to numpy (for a machine
# without torch or GPU); it then predicts like the numpy model.
with sklearn.config_context(array_api_dispatch=True):
    clf_moved = move_estimator_to(clf_torch, np, "cpu")
weight_gap = max(np.abs(a - b).max() for a, b in zip(clf_moved.coefs_, clf_numpy.coefs_))
loss_gap = np.abs(np.array(clf_torch.loss_curve_) - clf_numpy.loss_curve_)
agreement = np.mean(clf_moved.predict(X_test) == clf_numpy.predict(X_test))
print(f"largest weight difference: {weight_gap:.1e} "
      f"(largest weight: {np.abs(clf_numpy.coefs_[0]).max():.2f})")
print(f"largest loss difference over the epochs: {loss_gap.max():.1e}")
print(f"test predictions that agree: {agreement:.1%}")

plt.rcParams.update({"font.size": 12})
fig, (ax_loss, ax_gap) = plt.subplots(1, 2, figsize=(10, 4))
epochs = np.arange(1, len(loss_gap) + 1)
color = rule_color("dfa")
ax_loss.plot(epochs, clf_numpy.loss_curve_, color=color, linewidth=3, label="numpy")
ax_loss.plot(epochs, clf_torch.loss_curve_, color="black", linestyle="--", label=f"torch ({device})")
ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Loss curves")
ax_loss.legend()
ax_gap.plot(epochs, loss_gap, color=color, marker="o", markersize=3)
ax_gap.set(xlabel="epoch", ylabel="|loss numpy - loss torch|", yscale="log",
           title="Difference of the loss curves")
for ax in (ax_loss, ax_gap):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
fig.tight_layout()
plt.show()

# %%
# In the run shown on this page (the device is printed above), both fits
# stopped at the same epoch with the same test accuracy and the same test
# predictions. Their losses differ by up to 8e-5 in the first epochs and by
# less than 1e-6 at the end; the weights by up to about 1% of the largest
# weight, the float32 rounding of 581 updates (83 epochs of 7 batches). For timings on a
# GPU, see ``skdfa bench`` (:ref:`performance`): a network this small says
# nothing about speed.
