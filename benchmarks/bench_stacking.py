"""Wall time, CPU use and peak memory of StackingDFA.fit, n_jobs=1 vs n_jobs=-1.

Run once, by hand (a couple of minutes on 2 cores)::

    python benchmarks/bench_stacking.py
    python benchmarks/bench_stacking.py --n-estimators 8 --hidden 256 --epochs 2
    python benchmarks/bench_stacking.py --n-train 600  # a quick check, not a measure

Data: Fashion-MNIST's 60000 training images (float32, 188 MB) read by
``skdfa.datasets.load_fashion_mnist``; where the files are missing, a random
set of the same shape, labelled as such in the output.

For each ``n_jobs`` it prints:

- wall time of ``fit``;
- CPU use: CPU seconds of the process and of its worker processes (all its
  descendants) divided by the wall time, i.e. the average number of busy cores;
- peak memory: the largest sum over the process and its workers of their PSS
  (proportional set size: a page shared by k processes, such as the memory-
  mapped X, counts 1/k in each, so the sum is the real footprint), and the
  largest RSS of one worker. Both sampled every 0.1 s.

What to expect: with n_jobs=-1 every core is busy (>= 1.8 on 2 cores) and
fit is not slower than with n_jobs=1; the workers read X through a shared
memory map, so the peak does not grow by a copy of X per worker, only by the
learners' weights and each worker's mini-batch buffers.
"""

import argparse
import threading
import time
import warnings

import numpy as np
import psutil
from sklearn.exceptions import ConvergenceWarning

from skdfa import DFAClassifier, StackingDFA
from skdfa.datasets import load_fashion_mnist

MB = 2**20


def load_data(n_train=60000):
    """Fashion-MNIST train and test, or a labelled random stand-in; the
    first ``n_train`` training and ``n_train // 6`` test samples."""
    n_test = max(1, n_train // 6)
    try:
        X, y = load_fashion_mnist(subset="train", return_X_y=True)
        X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
        name = "Fashion-MNIST"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        X_all = rng.random((n_train + n_test, 784), dtype=np.float32)
        y_all = rng.integers(10, size=n_train + n_test)
        X, y, X_test, y_test = X_all[:n_train], y_all[:n_train], X_all[n_train:], y_all[n_train:]
        name = "SYNTHETIC random data"
    return X[:n_train], y[:n_train], X_test[:n_test], y_test[:n_test], name


def _processes():
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def _cpu_seconds():
    total = 0.0
    for proc in _processes():
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class MemorySampler(threading.Thread):
    """Samples the PSS of the process and its workers until stopped."""

    def __init__(self, interval=0.1):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_pss = 0
        self.peak_worker_rss = 0
        self._stop_event = threading.Event()

    def run(self):
        me = psutil.Process().pid
        while not self._stop_event.is_set():
            total = 0
            for proc in _processes():
                try:
                    info = proc.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += info.pss
                if proc.pid != me:
                    self.peak_worker_rss = max(self.peak_worker_rss, info.rss)
            self.peak_pss = max(self.peak_pss, total)
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def run(clf, X, y):
    """Fit ``clf``; return seconds, average busy cores and the sampler."""
    sampler = MemorySampler()
    cpu_before = _cpu_seconds()
    sampler.start()
    start = time.perf_counter()
    clf.fit(X, y)
    wall = time.perf_counter() - start
    # Workers (loky reuses them) are still alive here, so their CPU counts.
    cpu = _cpu_seconds() - cpu_before
    sampler.stop()
    return wall, cpu / wall, sampler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-estimators", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=60000,
                        help="training samples (fewer for a quick check)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)

    X, y, X_test, y_test, name = load_data(args.n_train)
    learner = DFAClassifier(hidden_layer_sizes=(args.hidden,), max_iter=args.epochs)
    # A short-trained head, so that the timings are the learners' fan-out.
    head = DFAClassifier(hidden_layer_sizes=(), learning_rate_init=1e-2, max_iter=5)
    weights = (X.shape[1] + 1) * args.hidden + (args.hidden + 1) * 10
    print(
        f"data: {name}, X {X.shape} {X.dtype} ({X.nbytes / MB:.0f} MB); "
        f"{args.n_estimators} learners of {args.hidden} units, {args.epochs} epochs "
        f"({weights * 4 / MB:.1f} MB of weights each); {psutil.cpu_count()} cores"
    )
    print(f"process PSS before fitting: {psutil.Process().memory_full_info().pss / MB:.0f} MB")
    print(
        f"{'n_jobs':>6}  {'wall (s)':>8}  {'cores busy':>10}  {'peak PSS (MB)':>13}  "
        f"{'peak worker RSS (MB)':>20}  {'test acc':>8}"
    )
    for n_jobs in (1, -1):
        clf = StackingDFA(
            learner,
            args.n_estimators,
            final_estimator=head,
            n_jobs=n_jobs,
            random_state=0,
        )
        wall, cores, memory = run(clf, X, y)
        print(
            f"{n_jobs:>6}  {wall:>8.1f}  {cores:>10.2f}  {memory.peak_pss / MB:>13.0f}  "
            f"{memory.peak_worker_rss / MB:>20.0f}  {clf.score(X_test, y_test):>8.4f}"
        )


if __name__ == "__main__":
    main()
