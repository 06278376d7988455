"""
===============================
Ten learning rules side by side
===============================

Every learning rule of skdfa trains the same network (two hidden layers of 64
``tanh`` units) on the digits, from the same initial weights and with the
same data order for a given seed: DFA and its relatives (``"dfa"``,
``"drtp"``, ``"sdfa"``, ``"dkp"``) send the output error, the target or the
error's sign straight to each hidden layer; feedback alignment and its
relatives (``"fa"``, ``"usf"``, ``"frsf"``, ``"brsf"``, ``"kp"``) pass it
back layer by layer through a feedback matrix; ``"bp"`` is back-propagation
(see :ref:`dfa` for the equations, and :ref:`choosing_rule` for what to pick).

For each rule and three seeds we record the test accuracy after every epoch
and, every 5 updates, both alignment angles of each hidden layer: between the
rule's hidden deltas and back-propagation's (``alignment_``), and between the
feedback the layer receives and the forward weights it stands in for
(``weight_alignment_``).
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
# One epoch per call to ``partial_fit``, so that the test accuracy can be
# measured after each; adam at ``learning_rate_init=0.01`` (see
# :ref:`recipes` for why not the default 0.001 on data this small).
DIRECT = ["dfa", "drtp", "sdfa", "dkp"]
LAYERWISE = ["fa", "usf", "frsf", "brsf", "kp"]
RULES = ["bp"] + DIRECT + LAYERWISE
SEEDS = [0, 1, 2]
N_EPOCHS = 15
accuracy = {rule: np.zeros((len(SEEDS), N_EPOCHS)) for rule in RULES}
fitted = {rule: [] for rule in RULES}
for rule in RULES:
    for i, seed in enumerate(SEEDS):
        clf = DFAClassifier(
            hidden_layer_sizes=(64, 64),
            rule=rule,
            learning_rate_init=0.01,
            track_alignment=5,
            random_state=seed,
        )
        for epoch in range(N_EPOCHS):
            clf.partial_fit(X_train, y_train, classes=classes)
            accuracy[rule][i, epoch] = clf.score(X_test, y_test)
        fitted[rule].append(clf)

# %%
# The table gives, for each rule, the mean test accuracy over the seeds after
# the last epoch (the last point of each line in the figure below) with its
# range, the best epoch of the mean curve and how far above the last epoch it
# is, and the angles of the first hidden
# layer at the end of training, averaged over the seeds.
print(f"{'rule':>5}  {'test acc. after':>15}  {'[min, max]':>14}  {'best epoch':>10}  "
      f"{'best - last':>11}  {'delta angle':>11}  {'feedback angle':>14}")
print(f"{'':>5}  {f'{N_EPOCHS} epochs':>15}")
for rule in RULES:
    final = accuracy[rule][:, -1]
    mean_curve = accuracy[rule].mean(axis=0)
    delta = np.mean([clf.alignment_[-1][0] for clf in fitted[rule]])
    weight = np.mean([clf.weight_alignment_[-1][0] for clf in fitted[rule]])
    print(f"{rule:>5}  {final.mean():15.3f}  [{final.min():.3f}, {final.max():.3f}]  "
          f"{mean_curve.argmax() + 1:10d}  {mean_curve.max() - mean_curve[-1]:11.3f}  "
          f"{delta:11.1f}  {weight:14.1f}")
means = np.array([accuracy[rule].mean(axis=0) for rule in RULES])
print(f"epochs at which bp's mean accuracy is the highest: "
      f"{np.sum(means.argmax(axis=0) == 0)} of {N_EPOCHS}")

# %%
# Test accuracy per epoch, mean over the seeds (the band is their range): the
# direct rules on the left, the layer-by-layer ones on the right, with
# back-propagation (grey dashes) in both.
plt.rcParams.update({"font.size": 12})
epochs = np.arange(1, N_EPOCHS + 1)


def draw(ax, rule, x, values):
    color = "0.4" if rule == "bp" else rule_color(rule)
    style = "--" if rule == "bp" else "-"
    ax.plot(x, values.mean(axis=0), style, color=color, label=rule, linewidth=2)
    ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=color, alpha=0.15)


fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
for ax, group, title in [(axes[0], DIRECT, "Direct rules"),
                         (axes[1], LAYERWISE, "Layer-by-layer rules")]:
    for rule in ["bp"] + group:
        draw(ax, rule, epochs, accuracy[rule])
    ax.set(title=title, xlabel="epoch", ylim=(0, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right")
axes[0].set_ylabel("test accuracy")
fig.tight_layout()
plt.show()

# %%
# The two angles of the first hidden layer during training (mean over the
# seeds, band: their range). Back-propagation's are 0 by definition and left
# out. A delta angle below 90 degrees means the rule's update is a descent
# direction for the layer.
updates_per_epoch = np.ceil(len(X_train) / 200)  # batch_size="auto": 200
fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharex=True, sharey=True)
for row, group in enumerate([DIRECT, LAYERWISE]):
    for col, (attribute, title) in enumerate(
        [("alignment_", "Deltas vs back-propagation's"),
         ("weight_alignment_", "Feedback vs forward weights")]
    ):
        ax = axes[row, col]
        for rule in group:
            angles = np.array([getattr(clf, attribute)[:, 0] for clf in fitted[rule]])
            steps = fitted[rule][0].alignment_steps_ / updates_per_epoch
            draw(ax, rule, steps, angles)
        ax.axhline(90, color="0.6", linestyle=":", linewidth=1)
        ax.set(title=title, ylim=(0, 135))
        ax.yaxis.set_major_locator(plt.MultipleLocator(45))
    axes[row, 0].legend(loc="upper right", ncol=len(group), fontsize=10,
                        handlelength=1.2, columnspacing=0.8)
for ax in axes[1]:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
for ax in axes[:, 0]:
    ax.set_ylabel("angle, first hidden layer (degrees)")
fig.tight_layout()
plt.show()

# %%
# What this run shows, on 1347 training and 450 test images after 15 epochs:
#
# - Back-propagation's mean curve is the highest at 14 of the 15 epochs and
#   at the last; the sign-symmetry rules (``"usf"``, ``"frsf"``, ``"brsf"``),
#   Kolen-Pollack (``"kp"``) and direct Kolen-Pollack (``"dkp"``) end within
#   about one point of it, DFA and FA within about three.
# - The learning curves are not monotonic: the mean curves of ``"fa"`` and
#   ``"kp"`` peak one or two epochs before the last, by 0.1 and 0.4 points,
#   and ``"sdfa"``'s by 1 point (the "best - last" column). One test image is
#   0.2 points, so such dips are within the epoch-to-epoch noise of this
#   small test set; ``early_stopping=True`` keeps the best epoch's weights.
# - DRTP, which projects the target instead of the error, learns more slowly
#   and ends about six points lower; sign-DFA (``"sdfa"``), which projects
#   only the sign of each output's error, barely learns here and depends
#   strongly on the seed. With softmax outputs, every non-target output's
#   error is positive, so the projected sign vector is nearly the same for
#   every sample.
# - The rules whose feedback carries the forward weights' signs or learns
#   them (``"usf"``, ``"frsf"``, ``"brsf"``, ``"kp"``, ``"dkp"``) have the
#   smallest angles, 45 degrees or less for both kinds; with fixed random
#   feedback (``"dfa"``, ``"fa"``) the angles fall from 90 degrees to about
#   60 (FA's feedback angle to 80) as the forward weights align;
#   DRTP's feedback moves away from the forward weights (over 90 degrees),
#   yet its deltas stay within 90 degrees of back-propagation's.
