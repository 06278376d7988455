"""Peak memory of fitting and predicting on MNIST-sized data (200k x 784 float32).

Run once, by hand (it takes a minute or two)::

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --early-stopping

The data are random (no download). Memory is measured with ``tracemalloc``,
which sees every numpy allocation: "extra" is the peak during the call minus
what was allocated before it (X itself is not counted), so it is what fitting
costs on top of the data. The bound checked at the end is the documented one:
fit needs the data plus a few per-sample arrays of the targets' width, never a
copy of X nor anything of shape (n_samples, hidden width):

    extra <= n_samples * (n_outputs * 12 + 16) + 8 * n_params * itemsize + 64 MB

(targets encoded as int64 then cast to float32, a permutation per epoch, the
weights' snapshot, optimizer state and gradients, and the mini-batch buffers),
plus, with ``early_stopping=True``, a copy of the validation rows
(``validation_fraction`` of X).

Measured once (2-core machine under load, hidden (256,), 2 epochs, X 598 MB):
fit 26 MB extra (bound 96 MB), 106 MB with early stopping (bound 156 MB);
predict 13 MB extra; process max RSS 775 MB (872 MB with early stopping).
"""

import argparse
import resource
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skdfa import DFAClassifier

MB = 2**20


def measure(call):
    """Run ``call()``; return its result, seconds and extra peak bytes."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=784)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--max-iter", type=int, default=2)
    parser.add_argument("--early-stopping", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = rng.random((args.n_samples, args.n_features), dtype=np.float32)
    y = rng.integers(10, size=args.n_samples)
    clf = DFAClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        max_iter=args.max_iter,
        early_stopping=args.early_stopping,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, fit_seconds, fit_extra = measure(lambda: clf.fit(X, y))
    _, predict_seconds, predict_extra = measure(lambda: clf.predict(X))

    n_outputs = clf.n_outputs_
    bound = (
        args.n_samples * (n_outputs * 12 + 16)
        + 8 * clf.n_params_ * X.itemsize
        + 64 * MB
        + args.early_stopping * clf.validation_fraction * X.nbytes
    )
    one_hidden_layer = args.n_samples * max(args.hidden) * X.itemsize
    print(f"X: {X.shape} float32, {X.nbytes / MB:.0f} MB")
    print(f"DFAClassifier(hidden_layer_sizes={tuple(args.hidden)}, "
          f"max_iter={args.max_iter}, early_stopping={args.early_stopping})")
    print(f"fit:     {fit_seconds:7.1f} s, extra peak {fit_extra / MB:7.1f} MB "
          f"(bound {bound / MB:.1f} MB)")
    print(f"predict: {predict_seconds:7.1f} s, extra peak {predict_extra / MB:7.1f} MB "
          f"(one hidden layer for all of X: {one_hidden_layer / MB:.0f} MB)")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {maxrss:.0f} MB")
    assert fit_extra <= bound, "fit exceeded its documented memory bound"


if __name__ == "__main__":
    main()
