"""
=============================
Write your own learning rule
=============================

A variant of a built-in rule is one small class: subclass the rule, override
one public hook, and pass an instance as ``rule=`` to any skdfa estimator (see
:ref:`custom_rules`).

Here, a rule skdfa does not ship: direct feedback alignment with sparse
feedback (Crafton et al., 2019, "Direct Feedback Alignment With Sparse
Connections for Local Learning"), where each hidden unit receives the error of
a single output instead of a random mix of all of them. It changes only how
DFA draws its feedback (:meth:`~skdfa.rules.LearningRule.draw_feedback`);
:class:`~skdfa.rules.DirectRule` decides which layers receive a projection,
on a dense network and on a convolutional one alike.
"""

# %%
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdfa import ConvDFAClassifier, DFAClassifier
from skdfa.plotting import AlignmentDisplay
from skdfa.rules import DirectFeedbackAlignment


class SparseDFA(DirectFeedbackAlignment):
    """DFA whose feedback ``B_l`` keeps ``connections`` nonzero entries per
    hidden unit: each unit hears that many outputs' errors."""

    label = "sparse DFA"
    color = "#17a589"

    def __init__(self, connections=1, conv_feedback="kernel"):
        super().__init__(conv_feedback)
        self.connections = connections

    def draw_feedback(self, sample, shape, receiving_width):
        B = sample(shape, receiving_width)
        # Rank random keys down each column; keep the first `connections`.
        rank = sample.rng.uniform(size=B.shape).argsort(axis=0).argsort(axis=0)
        B[rank >= self.connections] = 0
        return B


# %%
# Two hidden layers, the same seeds, DFA and its sparse variant. The rule
# instance goes where a rule's name would.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, stratify=y, random_state=0)
fitted = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for rule in ["dfa", SparseDFA(connections=1)]:
        clf = DFAClassifier(
            (64, 64), rule=rule, learning_rate_init=0.01, max_iter=30, tol=0,
            track_alignment=5, random_state=0,
        ).fit(X_train, y_train)
        fitted[clf.rule if isinstance(clf.rule, str) else clf.rule.label] = clf
for name, clf in fitted.items():
    nonzero = sum((B != 0).sum() for B in clf.feedback_)
    print(f"{name:>10}: test accuracy {clf.score(X_test, y_test):.3f}, "
          f"{nonzero} nonzero feedback weights")

# %%
# With a tenth of DFA's feedback weights, the sparse rule reaches about the
# test accuracy of DFA (printed above).
#
# Both alignment angles: between each rule's hidden deltas and
# back-propagation's (left), and between the feedback and the forward path it
# stands in for (right). Each rule has its colour; line styles are the layers.
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for kind, ax in zip(["delta", "weight"], axes):
    AlignmentDisplay.from_estimator(list(fitted.values()), kind=kind, names=list(fitted), ax=ax)
    ax.set_ylim(0, 110)
fig.tight_layout()
plt.show()

# %%
# Both rules start near 90° (random feedback is unrelated to the gradient) and
# align as the forward weights adapt to the feedback; the sparse feedback's
# weight angles end a few degrees above DFA's.

# %%
# The same rule on a convolutional network: 8 kernels of 3x3, 2x2 max
# pooling, 32 dense units. In DFA's default form the convolution receives its
# sparse projection on the map after its pooling (8 x 3 x 3 = 72 columns of
# ``B``), sent back through the pooling; the pooling, which has no
# parameters, gets no draw of its own.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for rule in ["dfa", SparseDFA(connections=1)]:
        conv = ConvDFAClassifier(
            conv_layers=((8, 3),), pool_size=(2,), hidden_layer_sizes=(32,),
            learning_rate_init=0.01, max_iter=20, random_state=0,
        ).set_params(rule=rule).fit(X_train, y_train)
        shapes = [B.shape for B in conv.feedback_]
        name = rule if isinstance(rule, str) else rule.label
        print(f"{name:>10}: test accuracy {conv.score(X_test, y_test):.3f}, "
              f"feedback shapes {shapes}")
