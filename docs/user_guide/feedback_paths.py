"""Who sends the error where, for each learning rule (figure of the user guide).

Each panel shows a network with two hidden layers. Grey arrows are the forward
pass; coloured arrows carry the learning signal to the hidden layers.
"""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from skdfa.plotting import rule_color

NODES = ["x", "h1", "h2", "out"]
LABELS = {"x": "$x$", "h1": "$h_1$", "h2": "$h_2$", "out": r"$\hat y$"}
X_POS = {"x": 0.0, "h1": 1.5, "h2": 3.0, "out": 4.5}
FORWARD_Y = 1.0
SIGNAL_Y = -0.4


def _box(ax, x, y, text, color="0.85"):
    ax.add_patch(
        FancyBboxPatch(
            (x - 0.35, y - 0.3), 0.7, 0.6, boxstyle="round,pad=0.05", fc=color, ec="0.3"
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=12)


def _arrow(ax, start, end, color, label=None, rad=0.0, label_at=None):
    """An arrow from ``start`` to ``end``, its label at ``label_at`` (beside
    the arrow, clear of its line)."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=14,
            color=color,
            lw=1.8,
            connectionstyle=f"arc3,rad={rad}",
        )
    )
    if label:
        ax.text(*label_at, label, color=color, ha="center", va="center", fontsize=12)


def _network(ax):
    for name in NODES:
        _box(ax, X_POS[name], FORWARD_Y, LABELS[name])
    for a, b in zip(NODES[:-1], NODES[1:]):
        _arrow(ax, (X_POS[a] + 0.4, FORWARD_Y), (X_POS[b] - 0.4, FORWARD_Y), "0.55")


def _panel(ax, rule, title):
    _network(ax)
    color = rule_color(rule)
    source = "y" if rule == "drtp" else "e"
    _box(ax, X_POS["out"], SIGNAL_Y, f"${source}$", color="white")
    _arrow(ax, (X_POS["out"], FORWARD_Y - 0.35), (X_POS["out"], SIGNAL_Y + 0.35), "0.55")
    if rule in ("bp", "fa"):
        matrix = "W" if rule == "bp" else "B"
        suffix = "^T" if rule == "bp" else ""
        # The signal walks back one layer at a time.
        _arrow(
            ax, (X_POS["out"] - 0.4, SIGNAL_Y), (X_POS["h2"] + 0.1, FORWARD_Y - 0.35),
            color, f"${matrix}_3{suffix}$", label_at=(X_POS["h2"] + 0.95, FORWARD_Y - 0.45),
        )
        _arrow(
            ax, (X_POS["h2"] - 0.4, FORWARD_Y - 0.2), (X_POS["h1"] + 0.4, FORWARD_Y - 0.2),
            color, f"${matrix}_2{suffix}$", label_at=((X_POS["h1"] + X_POS["h2"]) / 2, FORWARD_Y - 0.48),
        )
    else:
        # One fixed random matrix per hidden layer, straight from the source.
        for layer, rad in (("h2", -0.15), ("h1", -0.25)):
            index = layer[1]
            _arrow(
                ax, (X_POS["out"] - 0.4, SIGNAL_Y), (X_POS[layer], FORWARD_Y - 0.35),
                color, f"$B_{index}$", rad=rad,
                # Left of the arrow's head, where no other line runs.
                label_at=(X_POS[layer] - 0.35, FORWARD_Y - 0.75),
            )
    ax.set_title(title, fontsize=12)
    ax.set_xlim(-0.6, 5.1)
    ax.set_ylim(-1.0, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")


fig, axes = plt.subplots(2, 2, figsize=(10, 5.5))
for ax, (rule, title) in zip(
    axes.ravel(),
    [
        ("bp", 'back-propagation ("bp")'),
        ("fa", 'feedback alignment ("fa")'),
        ("dfa", 'direct feedback alignment ("dfa")'),
        ("drtp", 'direct random target projection ("drtp")'),
    ],
):
    _panel(ax, rule, title)
fig.tight_layout()
