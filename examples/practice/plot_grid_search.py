"""
=====================================================
Grid search over the learning rule and feedback scale
=====================================================

The estimators are ordinary scikit-learn estimators: here a
:class:`~sklearn.pipeline.Pipeline` of a scaler and a
:class:`~skdfa.DFAClassifier` is tuned by
:class:`~sklearn.model_selection.GridSearchCV` over ``rule`` and
``feedback_scale``. With plain SGD the feedback scale acts as a learning rate
of the hidden layers, so it matters (:ref:`recipes` explains why it matters
much less with adam, the default).
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdfa import DFAClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

# %%
# 15 epochs of SGD for each of the 3 x 3 x 3 fits keep the search quick; they
# stop before converging, so their ConvergenceWarnings are silenced.
pipe = make_pipeline(
    StandardScaler(),
    DFAClassifier(
        hidden_layer_sizes=(32, 32),
        solver="sgd",
        learning_rate_init=0.05,
        max_iter=15,
        random_state=0,
    ),
)
rules = ["dfa", "fa", "drtp"]
scales = [0.01, 0.1, 1.0]
search = GridSearchCV(
    pipe,
    {"dfaclassifier__rule": rules, "dfaclassifier__feedback_scale": scales},
    cv=3,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"test accuracy of the refitted best model: {search.score(X_test, y_test):.3f}")

# %%
# Mean cross-validated accuracy of every combination: for every rule, the
# accuracy rises with the feedback scale over this range.
mean_scores = np.empty((len(rules), len(scales)))
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    i = rules.index(params["dfaclassifier__rule"])
    j = scales.index(params["dfaclassifier__feedback_scale"])
    mean_scores[i, j] = score
print("feedback_scale:", scales)
for rule, row in zip(rules, mean_scores):
    print(f"{rule:>4}:", row.round(3))
fig, ax = plt.subplots(figsize=(5, 3.5))
image = ax.imshow(mean_scores, cmap="viridis")
ax.set(
    xticks=range(len(scales)),
    xticklabels=scales,
    yticks=range(len(rules)),
    yticklabels=rules,
    xlabel="feedback_scale",
    ylabel="rule",
    title="Cross-validated accuracy (SGD)",
)
for (i, j), value in np.ndenumerate(mean_scores):
    # Dark text on the bright end of the colour map, light text on the dark end.
    red, green, blue, _ = image.cmap(image.norm(value))
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    ax.text(j, i, f"{value:.2f}", ha="center", va="center",
            color="black" if luminance > 0.5 else "white")
fig.colorbar(image, label="mean CV accuracy")
fig.tight_layout()
plt.show()
