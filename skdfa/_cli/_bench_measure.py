"""The bench's measurements: epochs of each learner, timed in turn, and the
machine's matrix-multiply rate.

Each learner is a generator (:func:`bench_learner`, or the reference loops of
``_bench_reference.py``) that yields its :class:`BenchResult` first, then
one progress line per epoch; :func:`run_interleaved` steps them in turn. Every
learner's epoch runs with the same BLAS, OpenMP and torch threads
(:class:`LearnerThreads`), and the next epoch starts only once this process's
threads are idle: numpy's OpenBLAS workers keep spinning on a core for about
0.1 s after their last product, which the learner that runs next would pay.
"""

import contextlib
import os
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from . import _common

BATCH_SIZE = 200

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``--clock``: wall time, or the CPU time of this process (all its threads),
which other jobs on a busy machine do not inflate."""


def network_layers(network):
    """``network``'s layers: dense layers for a dense network's widths
    ``[n_features, hidden..., n_outputs]``, else ``network`` itself."""
    from .._layers import DenseLayer

    if all(isinstance(n, (int, np.integer)) for n in network):
        return [DenseLayer(int(a), int(b)) for a, b in zip(network[:-1], network[1:])]
    return list(network)


def training_flops_per_sample(network, rule):
    """Training FLOPs per sample of a network (see
    ``_bench_report.FLOP_EXPLANATION``): twice the multiply-adds of the
    forward products (each layer's ``forward_macs``), the weight gradients
    (as many as the forward products) and the error signals (the rule's
    ``error_signal_macs``).

    Parameters
    ----------
    network : list of int or list of layers
        A dense network's widths ``[n_features, hidden widths...,
        n_outputs]``, or a network's layers (a convolutional net's).
    rule : str or LearningRule
        A learning rule's name or a rule object.

    Returns
    -------
    flops : int
        Floating-point operations of the matrix products per sample.

    Examples
    --------
    >>> from skdfa._cli._bench_measure import training_flops_per_sample
    >>> training_flops_per_sample([784, 800, 10], "dfa")  # 2*(2*635200 + 8000)
    2556800
    >>> training_flops_per_sample([784, 800, 10], "bp")  # 2*(2*635200 + 8000)
    2556800
    >>> training_flops_per_sample([4, 3, 2, 1], "bp")  # 2*(2*20 + 6 + 2)
    96
    >>> training_flops_per_sample([4, 3, 2, 1], "dfa")  # 2*(2*20 + 1*5)
    90
    """
    layers = network_layers(network)
    forward = sum(layer.forward_macs for layer in layers)
    return 2 * (2 * forward + _common.get_rule(rule).error_signal_macs(layers))


def product_shapes(network, batch_size=BATCH_SIZE):
    """``(rows, inner, columns)`` of each layer's forward matrix product.

    A dense layer's is ``(batch, n_in, n_out)``; a convolution's, as the
    numpy engine computes it (im2col, one product), ``(batch H_out W_out,
    C_in kh kw, C_out)``. Poolings have none.

    Parameters
    ----------
    network : list of int or list of layers
        As :func:`training_flops_per_sample`.
    batch_size : int, default=200

    Returns
    -------
    shapes : list of (int, int, int)
    """
    shapes = []
    for layer in network_layers(network):
        if not layer.n_params:
            continue
        kernel_shape = getattr(layer, "kernel_shape", None)
        if kernel_shape is None:
            shapes.append((batch_size, layer.n_in, layer.n_out))
        else:
            positions = int(np.prod(layer.output_shape[1:]))
            shapes.append((batch_size * positions, int(np.prod(kernel_shape[1:])),
                           kernel_shape[0]))
    return shapes


def _best_seconds(fn, min_time, repeats):
    """Best time of one call of ``fn`` over ``repeats`` timed loops."""
    fn()
    best = np.inf
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / n)
    return best


def matmul_rate(network, batch_size=BATCH_SIZE, *, min_time=0.2, repeats=3, seed=0):
    """float32 ``np.matmul`` rate on a network's training shapes, in GFLOP/s.

    Times, for every layer's forward product ``(rows, inner) @ (inner,
    columns)`` (:func:`product_shapes`: a convolution's im2col product), that
    product and the weight-gradient product ``(rows, inner).T @ (rows,
    columns)`` (a transposed view, as the engine computes it), each the best
    of ``repeats`` loops of at least ``min_time`` seconds, and returns their
    total FLOPs over their total time.

    Parameters
    ----------
    network : list of int or list of layers
        ``[n_features, hidden widths..., n_outputs]``, or a network's layers.
    batch_size : int, default=200
        Rows of the batch.
    min_time : float, default=0.2
        Seconds per timing loop.
    repeats : int, default=3
        Timing loops per product; the fastest counts.
    seed : int, default=0
        Seeds the random matrices.

    Returns
    -------
    rate : float
        GFLOP/s.
    """
    rng = np.random.default_rng(seed)
    flops = seconds = 0.0
    for rows, inner, columns in product_shapes(network, batch_size):
        X = rng.random((rows, inner), dtype=np.float32)
        W = rng.random((inner, columns), dtype=np.float32)
        delta = rng.random((rows, columns), dtype=np.float32)
        A = np.empty((rows, columns), np.float32)
        G = np.empty((inner, columns), np.float32)
        seconds += _best_seconds(lambda: np.matmul(X, W, out=A), min_time, repeats)
        seconds += _best_seconds(lambda: np.matmul(X.T, delta, out=G), min_time, repeats)
        flops += 2 * 2 * rows * inner * columns
    return flops / seconds / 1e9


@dataclass
class BenchResult:
    """One learner on one architecture.

    ``learner`` is ``"mlp"`` (scikit-learn's MLPClassifier), ``"torch-loop"``
    (the plain PyTorch DFA loop) or an skdfa rule; ``device`` is ``"numpy"``
    or the torch device it trained on. ``epoch_seconds`` are the timed
    epochs (not the first, unless it is the only one), ``all_seconds`` every
    epoch, ``accuracies`` the held-out accuracy after each epoch where it is
    measured (``score_each_epoch``), and ``idle_waits`` the seconds waited,
    untimed, after each epoch for this process's threads to go idle.
    ``layers`` are a convolutional net's layers (None for a dense net, which
    ``units`` describe): its FLOPs are counted on them.
    """

    learner: str
    units: list
    epoch_seconds: list = field(default_factory=list)
    peak_bytes: int = 0
    accuracy: float = np.nan
    device: str = "numpy"
    variant: str = ""
    idle_waits: list = field(default_factory=list)
    all_seconds: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)
    layers: list = None

    @property
    def name(self):
        return f"{self._learner_name} {self.variant}".rstrip()

    @property
    def _learner_name(self):
        if self.learner == "mlp":
            return "sklearn MLPClassifier"
        if self.learner == "torch-loop":
            return f"PyTorch DFA loop {self.device}"
        # A user's rule (package.module:NAME) by its own name.
        rule = _common.get_rule(self.learner).name
        if self.device == "numpy":
            return f"skdfa {rule}"
        return f"skdfa {rule} torch {self.device}"

    @property
    def rule(self):
        """The rule whose FLOPs the learner does (MLPClassifier back-propagates)."""
        return {"mlp": "bp", "torch-loop": "dfa"}.get(self.learner, self.learner)

    @property
    def seconds_per_epoch(self):
        """Median of the timed epochs (the first one is not timed)."""
        return float(np.median(self.epoch_seconds))

    @property
    def flops_per_sample(self):
        """Training FLOPs per sample (:func:`training_flops_per_sample`)."""
        network = self.units if self.layers is None else self.layers
        return training_flops_per_sample(network, self.rule)

    def gflops(self, n_samples):
        """Achieved training rate on ``n_samples`` per epoch."""
        return self.flops_per_sample * n_samples / self.seconds_per_epoch / 1e9


def arch(units):
    """``784-800-10``: a network's widths."""
    return "-".join(str(u) for u in units)


def bench_learner(rule, hidden, data, epochs, seed=0, device="numpy", *,
                  sync_every_batch=False, variant="", clock="wall", trace_memory=True,
                  score_each_epoch=False, conv=None, **settings):
    """Train one learner for ``epochs`` epochs of ``partial_fit``, one epoch
    per step of the generator.

    Epoch 1 (allocations, input checks) runs under ``tracemalloc`` for the
    peak memory; epochs 2.. are timed. With ``epochs=1`` the traced epoch is
    timed too (slower than an untraced one).

    Parameters
    ----------
    rule : {"mlp"} or str
        ``"mlp"`` is scikit-learn's MLPClassifier; the others skdfa's rules.
    hidden : tuple of int
        Hidden widths.
    data : tuple
        ``X_train, X_test, y_train, y_test``, X float32.
    epochs : int
        Epochs to train.
    seed : int, default=0
        ``random_state`` of the learner.
    device : {"numpy", "cpu", "cuda", "mps"}, default="numpy"
        Train on numpy arrays, or on torch tensors on this device (with
        ``array_api_dispatch``; memory is then not traced).
    sync_every_batch : bool, default=False
        Read and check every batch's loss on the host, as the training loop
        did before it kept the losses on the device (``--effect-of
        per-batch-sync``): the estimator's ``_sync_every_batch``.
    variant : str, default=""
        Appended to the learner's name in the report.
    clock : {"wall", "cpu"}, default="wall"
        What an epoch's time is (``CLOCKS``); ``"cpu"`` on numpy and torch
        CPU only (a GPU's time is not the process's CPU time).
    trace_memory : bool, default=True
        Trace the first epoch's peak memory (numpy), which slows that epoch.
    score_each_epoch : bool, default=False
        Measure the held-out accuracy after every epoch, untimed.
    conv : dict, default=None
        A convolutional net: the :class:`~skdfa.ConvDFAClassifier`
        parameters of its layers (``hidden`` is then its dense widths); its
        layers are kept in the result for the FLOP count. None: a dense net.
    **settings
        More parameters of the learner (``batch_size``, ``solver``,
        ``dropout``, ``learning_rate_init``:
        :func:`~skdfa._cli._common.make_learner`).

    Yields
    ------
    result : BenchResult
        First, the result that the run fills in: epoch times as they come,
        the test accuracy once the generator is exhausted.
    line : str
        Then a progress line after each epoch.
    """
    X_train, X_test, y_train, y_test = data
    classes = np.unique(np.concatenate([y_train, y_test]))
    est = _common.make_learner(rule, hidden=hidden, epochs=epochs, seed=seed, conv=conv,
                               **{"batch_size": BATCH_SIZE, **settings})
    if sync_every_batch:
        est._sync_every_batch = True
    units = [X_train.shape[1], *hidden, len(classes)]
    # The layers that the fit will build, built apart (unfitted) for the count.
    layers = None if conv is None else clone(est)._make_layers(units)
    result = BenchResult(rule, units, device=device, variant=variant, layers=layers)
    yield result
    X_train, X_test, y_train, y_test = _common.to_device(
        (X_train, X_test, y_train, y_test), device
    )

    for epoch in range(epochs):
        traced = trace_memory and epoch == 0 and device == "numpy"
        # Entered per epoch: the learners' epochs alternate, and the
        # dispatch setting and warning filters must not leak into another's.
        with _common.on_device(device), _common.quietly():
            if traced:
                tracemalloc.start()
            now = CLOCKS[clock]
            start = now()
            est.partial_fit(X_train, y_train, classes=classes)
            _common.synchronize(device)
            seconds = now() - start
            if traced:
                result.peak_bytes = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            if score_each_epoch:
                result.accuracies.append(float(est.score(X_test, y_test)))
        yield record_epoch(result, epoch, epochs, seconds)
    with _common.on_device(device), _common.quietly():
        result.accuracy = float(est.score(X_test, y_test))


def record_epoch(result, epoch, epochs, seconds):
    """Keep an epoch's time (not the first one's, unless it is the only one)
    and return its progress line."""
    result.all_seconds.append(seconds)
    if epoch > 0 or epochs == 1:
        result.epoch_seconds.append(seconds)
    note = "  (not timed)" if epoch == 0 and epochs > 1 else ""
    return (
        f"  {arch(result.units)}  {result.name:<22} epoch {epoch + 1}/{epochs}  "
        f"{seconds:7.2f} s{note}"
    )


def available_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class LearnerThreads:
    """The threads every learner's epoch runs with, the same for all.

    Inside ``with threads:``, every BLAS and OpenMP library loaded in this
    process (``threadpoolctl``: numpy's OpenBLAS, torch's OpenMP) and torch's
    intra-op pool use ``n`` threads; they are restored on the way out.

    Parameters
    ----------
    n : int, default=None
        Threads; None: the cores this process may run on.
    """

    def __init__(self, n=None):
        self.n = available_cores() if n is None else n

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self._stack = contextlib.ExitStack()
        # Looked up at every entry: torch's libraries load with its first learner.
        self._stack.enter_context(threadpool_limits(limits=self.n))
        torch = sys.modules.get("torch")
        if torch is not None:
            saved = torch.get_num_threads()
            torch.set_num_threads(self.n)
            self._stack.callback(torch.set_num_threads, saved)
        return self

    def __exit__(self, *exc_info):
        self._stack.close()

    def describe(self):
        """One line: what every learner runs with."""
        return (f"every learner's epochs ran with {self.n} BLAS/OpenMP threads "
                f"(threadpoolctl) and {self.n} torch threads")


def wait_until_idle(window=0.01, timeout=1.0):
    """Wait until this process's threads stop using the CPU; the seconds waited.

    numpy's OpenBLAS workers spin for about 0.1 s after their last product
    (its ``THREAD_TIMEOUT``) on cores that the next learner's epoch would
    share: the bench waits, untimed, until a ``window`` of seconds passes with
    less than a tenth of it in this process's CPU time (``timeout`` at most).
    """
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        cpu = time.process_time()
        time.sleep(window)
        if time.process_time() - cpu < 0.1 * window:
            break
    return time.perf_counter() - start


def run_interleaved(runs, epochs, progress=None, *, threads=None, reverse=False):
    """Train the learners epoch by epoch in turn: each one's epoch ``k`` runs
    between the others' epochs ``k``, so that a busy spell of a shared
    machine slows them alike rather than the one that happens to run then.

    Each epoch runs inside ``threads`` and is followed, untimed, by
    :func:`wait_until_idle`, so that no learner's threads run into the
    next one's epoch.

    Parameters
    ----------
    runs : list of generators
        From :func:`bench_learner` or ``_bench_reference.torch_dfa_loop``.
    epochs : int
    progress : callable, default=None
        Called with each epoch's progress line.
    threads : LearnerThreads, default=None
        None: ``LearnerThreads()``, every core.
    reverse : bool, default=False
        Step the learners in the reverse order of ``runs`` (``--reverse``):
        the results, and so the report, are the same learners in the same
        places.

    Returns
    -------
    results : list of BenchResult
        In the order of ``runs``, whatever ``reverse``.
    """
    threads = LearnerThreads() if threads is None else threads
    results = [next(run) for run in runs]
    order = list(zip(runs, results))[::-1 if reverse else 1]
    for _ in range(epochs):
        for run, result in order:
            with threads:
                line = next(run)
            result.idle_waits.append(wait_until_idle())
            if progress is not None:
                progress(line)
    for run, _ in order:
        with threads:
            next(run, None)  # the test accuracy
    return results


def partial_fit_overhead(rule, hidden, data, device="numpy", *, batches=(1, 8), calls=15,
                         seed=0, threads=None):
    """What a ``partial_fit`` call costs beyond the work of its batches.

    One learner is trained by calls of ``batches[0]`` and ``batches[1]``
    batches of 200 rows, alternately, ``calls`` times each; what the larger
    calls add per extra batch is a batch's work, and a call's fixed cost is
    the smaller call's time less its batches' work (medians over the calls).

    Parameters
    ----------
    rule : str
        An skdfa rule.
    hidden : tuple of int
        Hidden widths.
    data : tuple
        ``X_train, X_test, y_train, y_test``, X float32, with at least
        ``batches[1]`` batches of training rows.
    device : {"numpy", "cpu", "cuda", "mps"}, default="numpy"
    batches : (int, int), default=(1, 8)
        Batches per call of the two kinds of call.
    calls : int, default=15
        Calls of each kind.
    seed : int, default=0
    threads : LearnerThreads, default=None
        None: every core.

    Returns
    -------
    seconds : dict
        ``"small"``, ``"large"`` (median seconds per call of each kind),
        ``"batch"`` (seconds per batch) and ``"fixed"`` (seconds per call
        beyond its batches).
    """
    threads = LearnerThreads() if threads is None else threads
    X_train, _, y_train, y_test = data
    classes = np.unique(np.concatenate([y_train, y_test]))
    est = _common.make_learner(rule, hidden=hidden, epochs=1, seed=seed, batch_size=BATCH_SIZE)
    sizes = [BATCH_SIZE * n for n in batches]
    X, y = _common.to_device((X_train[: sizes[1]], y_train[: sizes[1]]), device)
    times = {size: [] for size in sizes}
    with threads, _common.on_device(device), _common.quietly():
        est.partial_fit(X, y, classes=classes)  # allocations, first-call checks
        for _ in range(calls):
            for size in sizes:
                start = time.perf_counter()
                est.partial_fit(X[:size], y[:size])
                _common.synchronize(device)
                times[size].append(time.perf_counter() - start)
    small, large = (float(np.median(times[size])) for size in sizes)
    batch = (large - small) / (batches[1] - batches[0])
    return {"small": small, "large": large, "batch": batch,
            "fixed": small - batches[0] * batch}
