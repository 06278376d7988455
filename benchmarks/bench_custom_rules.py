"""The table of the user guide's three worked rules ("Write your own learning
rule"): each trained on digits on a dense and a convolutional network, test
accuracy over three seeds, beside ``"dfa"`` and ``"fa"``.

The rules are the guide's own code blocks, read from
``docs/user_guide/custom_rules.rst`` (:func:`guide_rules`), so the table
measures what the guide shows.

Usage::

    python benchmarks/bench_custom_rules.py [--epochs 30] [--seeds 0,1,2]
"""

import argparse
import re
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import ConvDFAClassifier, DFAClassifier

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "custom_rules.rst"

DENSE = dict(hidden_layer_sizes=(64, 64), solver="sgd", learning_rate_init=0.05, max_iter=30)
CONV = dict(conv_layers=((8, 3),), pool_size=(2,), hidden_layer_sizes=(32,), solver="sgd",
            learning_rate_init=0.01, max_iter=30)


def guide_source(path=GUIDE):
    """The Python code blocks of the guide, joined into one module's source."""
    text = Path(path).read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return "\n".join(
        "\n".join(line[4:] for line in block.splitlines()) for block in blocks
    )


def guide_rules(path=GUIDE):
    """The names the guide's code blocks define (``ScaledDFA``, ``ScaledFA``,
    ``TrackingFA``...)."""
    namespace = {}
    exec(compile(guide_source(path), str(path), "exec"), namespace)
    return namespace


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rules = guide_rules()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, stratify=y, random_state=0)
    learners = {
        '"dfa"': "dfa",
        "ScaledDFA(3)": rules["ScaledDFA"](3.0),
        'ScaledDFA(3, "map")': rules["ScaledDFA"](3.0, "map"),
        '"fa"': "fa",
        "ScaledFA(3)": rules["ScaledFA"](3.0),
        "TrackingFA(0.01)": rules["TrackingFA"](0.01),
    }
    print(f"{'rule':<24}{'dense':>18}{'conv':>18}")
    for name, rule in learners.items():
        cells = []
        for Estimator, params in [(DFAClassifier, DENSE), (ConvDFAClassifier, CONV)]:
            scores = []
            for seed in seeds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clf = Estimator(rule=rule, random_state=seed,
                                    **{**params, "max_iter": args.epochs})
                    scores.append(clf.fit(X_train, y_train).score(X_test, y_test))
            cells.append(f"{np.mean(scores):.3f} ± {np.std(scores):.3f}")
        print(f"{name:<24}{cells[0]:>18}{cells[1]:>18}")


if __name__ == "__main__":
    main()
