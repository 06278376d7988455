"""The three forms of the direct rules below a convolution, side by side:
DFA with ``conv_feedback="map"``, ``"pooled"`` (Nøkland's code) and
``"kernel"`` (biotorch's), on digits and on Fashion-MNIST LeNet, two seeds.

- digits: 8x8 images, 8 and 16 kernels of 3x3 (padding 1), 2x2 max pooling
  after each, 64 dense units, ReLU, adam at 1e-2, batch 64, 20 epochs, the
  75/25 stratified split of seed 0;
- Fashion-MNIST: biotorch's LeNet (``ConvDFAClassifier``'s defaults) on the
  28x28 images zero-padded to 32x32 (``padding=(2, 0, 0)``), float32, adam at
  1e-3, batch 64, 20 epochs, the 60000/10000 split.

Prints one line per cell as it finishes (test error after the last epoch,
and its lowest over the epochs), then the table.

Usage::

    python benchmarks/conv_feedback_forms.py [--data digits,fashion-mnist] [--seeds 0,1]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdfa import ConvDFAClassifier
from skdfa.rules import DirectFeedbackAlignment

FORMS = ("map", "pooled", "kernel")
RATES = {"digits": 1e-2, "fashion-mnist": 1e-3}
SETTINGS = {
    "digits": dict(conv_layers=((8, 3), (16, 3)), padding=1, pool_size=(2, 2),
                   hidden_layer_sizes=(64,)),
    "fashion-mnist": dict(padding=(2, 0, 0)),
}


def load(data):
    if data == "digits":
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            (X / 16).astype(np.float32), y, stratify=y, random_state=0
        )
        return X_train, y_train, X_test, y_test
    from skdfa.datasets import load_fashion_mnist

    X_train, y_train = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    return X_train, y_train, X_test, y_test


def run_cell(data, form, seed, arrays, epochs=20):
    X_train, y_train, X_test, y_test = arrays
    clf = ConvDFAClassifier(
        **SETTINGS[data], rule=DirectFeedbackAlignment(conv_feedback=form), batch_size=64,
        learning_rate_init=RATES[data], max_iter=1, warm_start=True, random_state=seed,
    )
    errors = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs):
            clf.fit(X_train, y_train)
            errors.append(100 * (1 - clf.score(X_test, y_test)))
    return errors[-1], min(errors)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits,fashion-mnist")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    table = {}
    for data in args.data.split(","):
        arrays = load(data)
        for form in FORMS:
            for seed in seeds:
                start = time.perf_counter()
                last, best = run_cell(data, form, seed, arrays, args.epochs)
                table[data, form, seed] = last
                print(f"{data} {form} seed {seed}: test error {last:.2f}% after "
                      f"{args.epochs} epochs (lowest {best:.2f}%), "
                      f"{time.perf_counter() - start:.0f} s", flush=True)
    print()
    print(f"{'data':<15}{'form':<8}" + "".join(f"{'seed ' + str(s):>10}" for s in seeds)
          + f"{'mean':>8}")
    for data in args.data.split(","):
        for form in FORMS:
            errors = [table[data, form, s] for s in seeds]
            print(f"{data:<15}{form:<8}" + "".join(f"{e:>10.2f}" for e in errors)
                  + f"{np.mean(errors):>8.2f}")


if __name__ == "__main__":
    main()
