"""
=====================================================
A linear network learns ``y = A x`` by feedback alone
=====================================================

The first demonstration of the 2017 notebooks this project comes from: a
network without activation functions (``activation="identity"``) learns a
random linear map ``y = A x``. Trained by direct feedback alignment, its
hidden layers never see the output weights, only the output error sent
through fixed random matrices ``B_l``; it learns all the same, because the
forward weights come to *align* with the feedback.

Why they align (Lillicrap et al., 2016; Nøkland, 2016). Under DFA the hidden
layer ``l`` gets the delta ``delta_l = e B_l`` (``e`` the output error, one row
per sample). Its activity ``h_l`` therefore drifts along ``-e B_l``. The
weights above it, ``W_{l+1}``, are updated by ``-h_l^T (delta_{l+1})``; for the
last hidden layer ``delta_{l+1} = e`` and the update contains
``B_l^T (e^T e)``, a positive semi-definite image of ``B_l^T``. So ``W_{l+1}``
accumulates ``B_l^T``: the path from the layer to the output grows to point
the way the feedback does, and ``e B_l`` becomes a descent direction, within
90 degrees of back-propagation's ``e W_{l+1}^T``. For lower layers the same
argument applies to the whole forward path ``W_{l+1} ... W_L`` above them.

We measure that alignment here, from the fitted ``coefs_`` and ``feedback_``:
the angle between each ``B_l`` and the transpose of its forward path.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from skdfa import DFARegressor
from skdfa.plotting import rule_color

rng = np.random.default_rng(0)
n_samples, n_in, n_out = 1000, 30, 10
A = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
X = rng.standard_normal((n_samples, n_in))
y = X @ A.T


def path_angles(reg, feedback):
    """Degrees between each feedback matrix ``B_l`` (n_out, width) and the
    transposed product of the forward weights above layer ``l``."""
    angles = []
    for l, B in enumerate(feedback):
        path = reg.coefs_[l + 1]
        for W in reg.coefs_[l + 2 :]:
            path = path @ W
        cosine = np.sum(B * path.T) / (np.linalg.norm(B) * np.linalg.norm(path))
        angles.append(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    return angles


# %%
# Train DFA and back-propagation one epoch at a time (``partial_fit``). DFA
# starts from zero weights, as in Nøkland's paper; BP cannot (at zero every
# hidden gradient is zero), so it starts from Glorot's random weights. BP never
# sees DFA's ``B_l``: its angle to them is the control, what no alignment
# looks like.
n_epochs = 60
common = dict(
    hidden_layer_sizes=(20, 20), activation="identity", learning_rate_init=1e-3,
    batch_size=50, random_state=0,
)
dfa = DFARegressor(rule="dfa", weight_init="zeros", **common)
bp = DFARegressor(rule="bp", **common)
angles = {"dfa": [], "bp": []}
for _ in range(n_epochs):
    dfa.partial_fit(X, y)
    bp.partial_fit(X, y)
    for name, reg in [("dfa", dfa), ("bp", bp)]:
        angles[name].append(path_angles(reg, dfa.feedback_))
angles = {name: np.array(a) for name, a in angles.items()}
for name, reg in [("dfa", dfa), ("bp", bp)]:
    print(f"{name}: final loss {reg.loss_curve_[-1]:.2e}, R^2 {reg.score(X, y):.4f}, "
          f"angle to B_l (layer 1, layer 2): "
          + ", ".join(f"{a:.0f} deg" for a in angles[name][-1]))

# %%
# Both rules fit the map (R^2 near 1); on this problem DFA, from zero weights,
# even reaches a low loss first. DFA's forward paths are already about 55
# degrees from their feedback matrices after the first epoch and settle
# between 30 and 40: well inside 90, so ``e B_l`` points downhill. BP's paths
# stay near 90 degrees from the same matrices, as any matrix unrelated to
# ``B_l`` would.
fig, (ax_loss, ax_angle) = plt.subplots(1, 2, figsize=(10, 4))
epochs = np.arange(1, n_epochs + 1)
for name, reg in [("dfa", dfa), ("bp", bp)]:
    ax_loss.plot(epochs, reg.loss_curve_, color=rule_color(name), label=name.upper())
    for layer, linestyle in enumerate(["-", ":"]):
        ax_angle.plot(epochs, angles[name][:, layer], color=rule_color(name), linestyle=linestyle,
                      label=f"{name.upper()}, hidden layer {layer + 1}")
ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Loss")
ax_angle.set(xlabel="epoch", ylabel="degrees", ylim=(0, 100),
             title="Angle between B_l and the forward path")
ax_angle.axhline(90, color="grey", lw=0.5)
ax_loss.legend()
ax_angle.legend(fontsize="small")
fig.tight_layout()
plt.show()
