"""Where the direct rules' signal enters a convolution block, in each of the
three ``conv_feedback`` forms (figure of the convolution guide).

Each panel shows a block, convolution -> activation -> pooling, then the next
layer with parameters. Grey arrows are the forward pass; the orange arrows
carry the projected error to the convolution.
"""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from skdfa.plotting import rule_color

NODES = ["conv", "act", "pool", "next"]
LABELS = {"conv": "conv", "act": "$f$", "pool": "pool", "next": "next\nlayer"}
X_POS = {"conv": 0.0, "act": 1.4, "pool": 2.8, "next": 4.2}
FORWARD_Y = 1.0
ERROR_Y = -0.6
ERROR_X = 4.2


def _box(ax, x, y, text, color="0.85"):
    ax.add_patch(FancyBboxPatch((x - 0.4, y - 0.3), 0.8, 0.6, boxstyle="round,pad=0.05",
                                fc=color, ec="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=11)


def _arrow(ax, start, end, color, label=None, label_at=None, rad=0.0, style="-|>"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color=color,
                                 lw=1.8, connectionstyle=f"arc3,rad={rad}"))
    if label:
        ax.text(*label_at, label, color=color, ha="center", va="center", fontsize=11)


def _panel(ax, form, title):
    color = rule_color("dfa")
    for name in NODES:
        _box(ax, X_POS[name], FORWARD_Y, LABELS[name])
    for a, b in zip(NODES[:-1], NODES[1:]):
        _arrow(ax, (X_POS[a] + 0.45, FORWARD_Y), (X_POS[b] - 0.45, FORWARD_Y), "0.55")
    _box(ax, ERROR_X, ERROR_Y, "$e$", color="white")
    if form == "map":
        # Onto the convolution's own map, before the pooling.
        _arrow(ax, (ERROR_X - 0.45, ERROR_Y), (X_POS["act"] - 0.1, FORWARD_Y - 0.35), color,
               r"$B_l$: $C\,H\,W$", (1.9, -0.05), rad=-0.1)
    elif form == "pooled":
        # Onto the pooled map, then back through the pooling.
        _arrow(ax, (ERROR_X - 0.45, ERROR_Y), (X_POS["pool"] + 0.2, FORWARD_Y - 0.35), color,
               r"$B_l$: $C\,H'W'$", (3.75, 0.15), rad=-0.1)
        _arrow(ax, (X_POS["pool"] - 0.45, FORWARD_Y - 0.2), (X_POS["act"] + 0.45,
               FORWARD_Y - 0.2), color, "max", (2.1, 0.55))
    else:
        # Onto the next layer's input, through its random kernel.
        _arrow(ax, (ERROR_X, ERROR_Y + 0.35), (X_POS["next"], FORWARD_Y - 0.35), color,
               r"$K$", (4.5, 0.2))
        _arrow(ax, (X_POS["next"] - 0.45, FORWARD_Y - 0.2), (X_POS["pool"] + 0.45,
               FORWARD_Y - 0.2), color)
        _arrow(ax, (X_POS["pool"] - 0.45, FORWARD_Y - 0.2), (X_POS["act"] + 0.45,
               FORWARD_Y - 0.2), color, "max", (2.1, 0.55))
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.6, 4.9)
    ax.set_ylim(-1.1, 1.5)
    ax.set_axis_off()


fig, axes = plt.subplots(1, 3, figsize=(12, 2.8))
for ax, (form, title) in zip(axes, [("map", '"map"'), ("pooled", '"pooled" (Nøkland)'),
                                    ("kernel", '"kernel" (biotorch)')]):
    _panel(ax, form, title)
fig.tight_layout()
