"""
=================================
A 20-layer network trained by DFA
=================================

In DFA every hidden layer is one fixed matrix away from the output error, so
its learning signal does not shrink with depth. Here a stack of 20 hidden
``tanh`` layers of 32 units is trained on the digits by DFA and by
back-propagation, with the same initial weights and settings (small batches
and a learning rate of 0.003 help both).
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import DFAClassifier
from skdfa.plotting import TrainingHistoryDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, stratify=y, random_state=0
)

# %%
params = dict(
    hidden_layer_sizes=(32,) * 20,
    batch_size=32,
    learning_rate_init=3e-3,
    max_iter=20,
    random_state=0,
)
clfs = [DFAClassifier(rule=rule, **params).fit(X_train, y_train) for rule in ["dfa", "bp"]]
for clf in clfs:
    print(
        f"{clf.rule:>3}: {clf.n_layers_ - 2} hidden layers, "
        f"test accuracy {clf.score(X_test, y_test):.3f}"
    )

# %%
# Within 20 epochs DFA brings the deep network further than back-propagation,
# whose gradient has to travel through all 20 layers.
disp = TrainingHistoryDisplay.from_estimator(clfs, names=["DFA", "BP"])
disp.ax_.set_yscale("log")
disp.ax_.set_title("20 hidden layers of 32 tanh units")
disp.figure_.tight_layout()
plt.show()
