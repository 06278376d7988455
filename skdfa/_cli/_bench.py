"""The speed benchmark: skdfa against scikit-learn's MLPClassifier and PyTorch.

All train the same architecture on the same float32 data with adam, batch
200 and the same epochs. skdfa runs on numpy arrays and, where torch is
installed, on torch tensors (CPU, and CUDA or MPS where the machine has one), next to the
reference peer: a plain PyTorch DFA loop written the way DFA research code
writes it (``_torch_dfa_loop``). Each epoch is one ``partial_fit`` call, timed alone
(no validation, no data loading), and the learners take their epochs in turn
(:func:`run_interleaved`), so that the machine's busy spells fall on all of
them; a learner's time is the median of its epochs. The first epoch, which
allocates the network, is measured for memory (``tracemalloc``) instead of
speed. The
achieved training rate is compared with the float32 matrix-multiply rate of
this machine, measured in the same run on the training's own matrix shapes.

Run it with ``skdfa bench`` or ``python benchmarks/bench_mlp.py``.
"""

import contextlib
import os
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import gen_batches

from . import _common
from ._common import CommandError

BATCH_SIZE = 200
ARCHITECTURES = [(800,), (1000, 1000, 1000)]
QUICK_ARCHITECTURES = [(32,), (32, 32, 32)]
QUICK_SAMPLES = (600, 200)
DEVICES = _common.DEVICES

# Targets of the project (reported, never asserted).
SPEEDUP_TARGETS = (2.5, 3.0)  # DFA vs MLPClassifier, shallow and deep net
TORCH_LOOP_TARGET = 1.1  # skdfa on torch CPU vs the plain PyTorch loop, time ratio
MATMUL_FRACTION_TARGET = 0.75
ACCURACY_TARGET = 0.89
BP_GAP_TARGET = 0.01

FLOP_EXPLANATION = """\
FLOPs per training sample = 2 x (multiply-adds of the matrix products):
  forward        sum_l n_{l-1} * n_l              (X_l @ W_l)
  weight grads   sum_l n_{l-1} * n_l              (X_l.T @ delta_l)
  error signal   bp and the fa family (fa, usf, frsf, brsf, kp):
                   sum_{l>=2} n_{l-1} * n_l   (delta_l @ W_l.T or B_l)
                 the dfa family (dfa, drtp, sdfa, dkp):
                   n_out * sum(hidden widths) (e @ B, one product)
  feedback grads dkp: n_out * sum(hidden widths) (e.T @ h_l; kp copies W's)
Element-wise work (activations, loss, adam) is not counted. MLPClassifier
counts as bp. GFLOP/s = FLOPs per epoch / seconds per epoch; "% matmul" divides
it by the float32 np.matmul rate measured in this run on the same layer shapes
(forward and weight-gradient products, batch 200; the better of before and
after training), the rate an ideal implementation would reach. On a busy
machine both rates are noisy: compare them only from a quiet one."""


def training_flops_per_sample(units, rule):
    """Training FLOPs per sample of a dense network (see ``FLOP_EXPLANATION``).

    Parameters
    ----------
    units : list of int
        ``[n_features, hidden widths..., n_outputs]``.
    rule : str or LearningRule
        A learning rule's name or a rule object.

    Returns
    -------
    flops : int
        Floating-point operations of the matrix products per sample.

    Examples
    --------
    >>> from skdfa._cli._bench import training_flops_per_sample
    >>> training_flops_per_sample([784, 800, 10], "dfa")  # 2*(2*635200 + 8000)
    2556800
    >>> training_flops_per_sample([784, 800, 10], "bp")  # 2*(2*635200 + 8000)
    2556800
    >>> training_flops_per_sample([4, 3, 2, 1], "bp")  # 2*(2*20 + 6 + 2)
    96
    >>> training_flops_per_sample([4, 3, 2, 1], "dfa")  # 2*(2*20 + 1*5)
    90
    """
    forward = sum(a * b for a, b in zip(units[:-1], units[1:]))
    return 2 * (2 * forward + _common.get_rule(rule).error_signal_macs(units))


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


def matmul_rate(units, batch_size=BATCH_SIZE, *, min_time=0.2, repeats=3, seed=0):
    """float32 ``np.matmul`` rate on a network's training shapes, in GFLOP/s.

    Times, for every layer, the forward product ``(batch, n_in) @ (n_in,
    n_out)`` and the weight-gradient product ``(batch, n_in).T @ (batch,
    n_out)`` (a transposed view, as the engine computes it), each the best of
    ``repeats`` loops of at least ``min_time`` seconds, and returns their total
    FLOPs over their total time.

    Parameters
    ----------
    units : list of int
        ``[n_features, hidden widths..., n_outputs]``.
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
    for n_in, n_out in zip(units[:-1], units[1:]):
        X = rng.random((batch_size, n_in), dtype=np.float32)
        W = rng.random((n_in, n_out), dtype=np.float32)
        delta = rng.random((batch_size, n_out), dtype=np.float32)
        A = np.empty((batch_size, n_out), np.float32)
        G = np.empty((n_in, n_out), np.float32)
        seconds += _best_seconds(lambda: np.matmul(X, W, out=A), min_time, repeats)
        seconds += _best_seconds(lambda: np.matmul(X.T, delta, out=G), min_time, repeats)
        flops += 2 * 2 * batch_size * n_in * n_out
    return flops / seconds / 1e9


def load_bench_data(data, quick, n_train=None):
    """``(X_train, X_test, y_train, y_test), label`` for ``--data``.

    ``"fashion-mnist"`` falls back to synthetic data (said in the label) when
    the files are missing; a folder must hold MNIST-style IDX files.
    ``n_train`` keeps the first training samples only.
    """
    sizes = QUICK_SAMPLES if quick else (60000, 10000)
    if data == "synthetic":
        arrays, label = _common.synthetic_data(*sizes), "SYNTHETIC data (Fashion-MNIST shaped)"
    else:
        try:
            loaded = _common.load_data(data)
            arrays, label = loaded.arrays, loaded.description
        except CommandError:
            if data != "fashion-mnist":
                raise
            arrays = _common.synthetic_data(*sizes)
            label = (
                "SYNTHETIC data (Fashion-MNIST shaped): Fashion-MNIST not found, "
                "get it with `apt-get install dataset-fashion-mnist`"
            )
    if quick:
        n_train, n_test = QUICK_SAMPLES
        X_train, X_test, y_train, y_test = arrays
        arrays = X_train[:n_train], X_test[:n_test], y_train[:n_train], y_test[:n_test]
    if n_train is not None:
        X_train, X_test, y_train, y_test = arrays
        arrays = X_train[:n_train], X_test, y_train[:n_train], y_test
    return arrays, label


@dataclass
class BenchResult:
    """One learner on one architecture.

    ``learner`` is ``"mlp"`` (scikit-learn's MLPClassifier), ``"torch-loop"``
    (the plain PyTorch DFA loop) or an skdfa rule; ``device`` is ``"numpy"``
    or the torch device it trained on.
    """

    learner: str
    units: list
    epoch_seconds: list = field(default_factory=list)
    peak_bytes: int = 0
    accuracy: float = np.nan
    device: str = "numpy"
    variant: str = ""

    @property
    def name(self):
        return f"{self._learner_name} {self.variant}".rstrip()

    @property
    def _learner_name(self):
        if self.learner == "mlp":
            return "sklearn MLPClassifier"
        if self.learner == "torch-loop":
            return f"PyTorch DFA loop {self.device}"
        # A user's rule (package.module:ClassName) by its own name.
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

    def gflops(self, n_samples):
        """Achieved training rate on ``n_samples`` per epoch."""
        flops = training_flops_per_sample(self.units, self.rule) * n_samples
        return flops / self.seconds_per_epoch / 1e9


def _make_learner(rule, hidden, epochs, seed, **settings):
    return _common.make_learner(rule, hidden=hidden, epochs=epochs, seed=seed,
                                **{"batch_size": BATCH_SIZE, **settings})


@contextlib.contextmanager
def _syncing_every_batch(enabled):
    """The training loop reads and checks every batch's loss on the host
    while in this block (as it did before the losses stayed on the device)."""
    from .. import _training

    saved = _training._SYNC_EVERY_BATCH
    _training._SYNC_EVERY_BATCH = enabled
    try:
        yield
    finally:
        _training._SYNC_EVERY_BATCH = saved


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``--clock``: wall time, or the CPU time of this process (all its threads),
which other jobs on a busy machine do not inflate."""


def bench_learner(rule, hidden, data, epochs, seed=0, device="numpy", *,
                  sync_every_batch=False, variant="", clock="wall", **settings):
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
        per-batch-sync``).
    variant : str, default=""
        Appended to the learner's name in the report.
    clock : {"wall", "cpu"}, default="wall"
        What an epoch's time is (``CLOCKS``); ``"cpu"`` on numpy and torch
        CPU only (a GPU's time is not the process's CPU time).
    **settings
        More parameters of the learner (``batch_size``, ``solver``,
        ``dropout``: :func:`~skdfa._cli._common.make_learner`).

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
    est = _make_learner(rule, hidden, epochs, seed, **settings)
    result = BenchResult(rule, [X_train.shape[1], *hidden, len(classes)], device=device,
                         variant=variant)
    yield result
    X_train, X_test, y_train, y_test = _common.to_device(
        (X_train, X_test, y_train, y_test), device
    )

    for epoch in range(epochs):
        traced = epoch == 0 and device == "numpy"
        # Entered per epoch: the learners' epochs alternate, and the
        # dispatch setting and warning filters must not leak into another's.
        with _common.on_device(device), _common.quietly(), \
                _syncing_every_batch(sync_every_batch):
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
        yield _record(result, epoch, epochs, seconds)
    with _common.on_device(device), _common.quietly():
        result.accuracy = float(est.score(X_test, y_test))


def _record(result, epoch, epochs, seconds):
    """Keep an epoch's time (not the first one's, unless it is the only one)
    and return its progress line."""
    if epoch > 0 or epochs == 1:
        result.epoch_seconds.append(seconds)
    note = "  (not timed)" if epoch == 0 and epochs > 1 else ""
    return (
        f"  {_arch(result.units)}  {result.name:<22} epoch {epoch + 1}/{epochs}  "
        f"{seconds:7.2f} s{note}"
    )


def _torch_dfa_loop(hidden, data, epochs, seed=0, device="cpu"):
    """The reference peer: DFA in plain PyTorch, as DFA research code writes it.

    ``torch.no_grad()`` forward pass, the output error projected to each
    hidden layer by ``e @ B_l``, ``torch.mm`` into each ``.grad``, then
    ``torch.optim.Adam(fused=True)`` (the L2 penalty as the weights' decay).
    Same network, initialisation scheme, batch size and epochs as skdfa's
    row; only the loop is PyTorch's.

    Parameters
    ----------
    hidden, data, epochs, seed
        As :func:`bench_learner`.
    device : str, default="cpu"
        The torch device.

    Yields
    ------
    As :func:`bench_learner`.
    """
    import torch

    X_train, X_test, y_train, y_test = data
    classes, labels = np.unique(y_train, return_inverse=True)
    units = [X_train.shape[1], *hidden, len(classes)]
    result = BenchResult("torch-loop", units, device=device)
    yield result
    rng = np.random.RandomState(seed)
    weights, biases = [], []
    for n_in, n_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        for shape, group in (((n_in, n_out), weights), ((n_out,), biases)):
            init = rng.uniform(-bound, bound, shape).astype(np.float32)
            group.append(torch.nn.Parameter(torch.asarray(init, device=device)))
    feedback = [
        torch.asarray(
            (rng.uniform(-1, 1, (units[-1], width)) / np.sqrt(width)).astype(np.float32),
            device=device,
        )
        for width in hidden
    ]
    for p in weights + biases:
        p.grad = torch.empty_like(p)
    optimizer = torch.optim.Adam(
        [{"params": weights, "weight_decay": 1e-4 / BATCH_SIZE},
         {"params": biases, "weight_decay": 0.0}],
        lr=1e-3, fused=True,
    )
    X = torch.asarray(X_train, device=device)
    Y = torch.nn.functional.one_hot(
        torch.asarray(labels, device=device), len(classes)
    ).to(torch.float32)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        start = time.perf_counter()
        with torch.no_grad():
            order = torch.randperm(X.shape[0], generator=generator).to(device)
            for batch in gen_batches(X.shape[0], BATCH_SIZE):
                index = order[batch]
                x, y = X[index], Y[index]
                activations = [x]
                for W, b in zip(weights[:-1], biases[:-1]):
                    activations.append(torch.tanh(torch.addmm(b, activations[-1], W)))
                output = torch.addmm(biases[-1], activations[-1], weights[-1])
                error = (torch.softmax(output, dim=1) - y) / x.shape[0]
                for l, B in enumerate(feedback):
                    delta = (error @ B) * (1 - activations[l + 1] ** 2)
                    torch.mm(activations[l].T, delta, out=weights[l].grad)
                    torch.sum(delta, 0, out=biases[l].grad)
                torch.mm(activations[-1].T, error, out=weights[-1].grad)
                torch.sum(error, 0, out=biases[-1].grad)
                optimizer.step()
        _common.synchronize(device)
        yield _record(result, epoch, epochs, time.perf_counter() - start)
    with torch.no_grad():
        hidden_out = torch.asarray(X_test, device=device)
        for W, b in zip(weights[:-1], biases[:-1]):
            hidden_out = torch.tanh(torch.addmm(b, hidden_out, W))
        scores = torch.addmm(biases[-1], hidden_out, weights[-1])
    predicted = classes[scores.argmax(dim=1).cpu().numpy()]
    result.accuracy = float(np.mean(predicted == y_test))


def run_interleaved(runs, epochs, progress=None):
    """Train the learners epoch by epoch in turn: each one's epoch ``k`` runs
    between the others' epochs ``k``, so that a busy spell of a shared
    machine slows them alike rather than the one that happens to run then.

    Parameters
    ----------
    runs : list of generators
        From :func:`bench_learner` or :func:`_torch_dfa_loop`.
    epochs : int
    progress : callable, default=None
        Called with each epoch's progress line.

    Returns
    -------
    results : list of BenchResult
        In the order of ``runs``.
    """
    results = [next(run) for run in runs]
    for _ in range(epochs):
        for run in runs:
            line = next(run)
            if progress is not None:
                progress(line)
    for run in runs:
        next(run, None)  # the test accuracy
    return results


def available_devices():
    """``"numpy"``, then the torch devices this machine has (none without torch).

    Returns
    -------
    devices : tuple of str
    note : str or None
        Why torch devices are left out, when they are.
    """
    try:
        import torch
    except ImportError:
        return ("numpy",), (
            'torch is not installed: no torch rows (pip install -e ".[torch]" from a checkout).'
        )
    if os.environ.get("SCIPY_ARRAY_API") != "1":
        return ("numpy",), (
            "SCIPY_ARRAY_API=1 is not set: no torch rows (scikit-learn's array API "
            "dispatch needs it set before Python starts)."
        )
    accelerators = tuple(
        name for name, present in [("cuda", torch.cuda.is_available()),
                                   ("mps", torch.backends.mps.is_available())] if present
    )
    return ("numpy", "cpu", *accelerators), None


def _arch(units):
    return "-".join(str(u) for u in units)


def run_benchmark(
    *, data="fashion-mnist", epochs=5, rules=("dfa", "bp"), architectures=None,
    quick=False, seed=0, out=print, progress=True, devices=("numpy",), n_train=None,
):
    """Run the benchmark and print its report.

    Parameters
    ----------
    data : {"fashion-mnist", "synthetic"} or path, default="fashion-mnist"
        The data (see :func:`load_bench_data`).
    epochs : int, default=5
        Epochs per learner, the first one untimed.
    rules : sequence of str, default=("dfa", "bp")
        skdfa rules to time; MLPClassifier always runs as the reference.
    architectures : list of tuple of int, default=None
        Hidden widths; ``None`` is 784-800-10 and 784-1000-1000-1000-10
        (tiny nets with ``quick``).
    quick : bool, default=False
        Tiny data and nets, for tests; the timings mean nothing.
    seed : int, default=0
        ``random_state`` of every learner.
    out : callable, default=print
        Receives the report, line by line.
    progress : bool, default=True
        Report each epoch.
    devices : sequence of {"numpy", "cpu", "cuda", "mps"}, default=("numpy",)
        Where skdfa trains: numpy arrays, torch tensors on CPU, on CUDA. Each
        torch device adds the plain PyTorch DFA loop on it as reference peer.
    n_train : int, default=None
        Train on the first ``n_train`` samples only (shorter epochs on a
        busy machine; accuracy is then lower).

    Returns
    -------
    report : dict
        ``results`` (a dict of architecture -> list of BenchResult),
        ``matmul_gflops`` (architecture -> rate) and ``targets`` (list of
        ``(description, value, passed)``).
    """
    if architectures is None:
        architectures = QUICK_ARCHITECTURES if quick else ARCHITECTURES
    arrays, label = load_bench_data(data, quick, n_train)
    X_train, X_test = arrays[0], arrays[1]
    n_classes = len(np.unique(arrays[2]))
    out(
        f"Benchmark on {label}: {len(X_train)} train / {len(X_test)} test samples, "
        f"{X_train.shape[1]} features, float32, tanh, adam lr=0.001, alpha=1e-4, "
        f"batch {BATCH_SIZE}, {epochs} epochs"
        + ("  [QUICK: timings mean nothing]" if quick else "")
    )
    results, rates = {}, {}
    for hidden in architectures:
        units = [X_train.shape[1], *hidden, n_classes]
        arch = _arch(units)
        timing = dict(min_time=0.01, repeats=1) if quick else {}
        # Measured before and after the training, the faster counting: a busy
        # machine only ever lowers the rate.
        before = matmul_rate(units, **timing)
        report_progress = out if progress else None
        runs = [
            bench_learner(rule, hidden, arrays, epochs, seed)
            for rule in ("mlp", *rules)
            if "numpy" in devices or rule == "mlp"
        ]
        for device in devices:
            if device == "numpy":
                continue
            runs += [
                bench_learner(rule, hidden, arrays, epochs, seed, device) for rule in rules
            ]
            runs.append(_torch_dfa_loop(hidden, arrays, epochs, seed, device))
        results[arch] = run_interleaved(runs, epochs, report_progress)
        rates[arch] = max(before, matmul_rate(units, **timing))
    n_train = len(X_train)
    for arch, rows in results.items():
        _print_table(arch, rows, rates[arch], n_train, out)
    out("")
    out(FLOP_EXPLANATION)
    # Accuracies after training on a few hundred samples say nothing about
    # the accuracy targets, which are for the full training set.
    targets = _targets(
        results, rates, n_train, real_data=label == "Fashion-MNIST", accuracy=not quick
    )
    out("")
    out("Targets:")
    for description, value, passed in targets:
        verdict = "n/a " if passed is None else ("PASS" if passed else "MISS")
        out(f"  {verdict}  {description}: {value}")
    if quick:
        out(f"  (accuracy targets not evaluated: --quick trains on {n_train} samples)")
    return {"results": results, "matmul_gflops": rates, "targets": targets}


EFFECTS = ("dropout", "per-batch-sync")
"""What ``--effect-of`` times: each learner with and without it."""


def run_effect(
    effect, *, data="fashion-mnist", epochs=5, rules=("dfa",), architectures=None,
    quick=False, seed=0, out=print, progress=True, devices=("numpy",), n_train=None,
    batch_size=BATCH_SIZE, solver="adam", dropout=(0.1, 0.5), clock="wall",
):
    """Time each skdfa learner with and without ``effect``, in one
    interleaved run, and print the ratio of their epoch times.

    ``"dropout"`` adds ``dropout`` to the learner; ``"per-batch-sync"`` makes
    the training loop read and check every batch's loss on the host, as it
    did before it kept the losses on the device and read them once per
    epoch (torch devices only: numpy has no device to wait for). The two
    learners are the same network, data, seed and settings otherwise.

    Parameters
    ----------
    effect : {"dropout", "per-batch-sync"}
    data, epochs, rules, architectures, quick, seed, out, progress, devices, n_train
        As :func:`run_benchmark` (MLPClassifier and the PyTorch loop do not run).
    batch_size : int, default=200
    solver : {"adam", "sgd", "rmsprop"}, default="adam"
    dropout : float or tuple of float, default=(0.1, 0.5)
        The rates of ``"dropout"`` (input, hidden).
    clock : {"wall", "cpu"}, default="wall"
        Wall time, or this process's CPU time (numpy and torch CPU only).

    Returns
    -------
    pairs : dict
        Architecture -> list of ``(without, with_effect)`` BenchResult pairs.
    """
    if effect not in EFFECTS:
        raise ValueError(f"effect must be one of {EFFECTS}, got {effect!r}.")
    if effect == "per-batch-sync":
        devices = [d for d in devices if d != "numpy"]
        if not devices:
            raise CommandError(
                "--effect-of per-batch-sync needs a torch device (--device cpu, cuda or mps): "
                "on numpy every loss is on the host already."
            )
    if clock == "cpu" and set(devices) - {"numpy", "cpu"}:
        raise CommandError("--clock cpu times numpy and torch CPU only: a GPU's time "
                           "is not this process's CPU time.")
    if architectures is None:
        architectures = QUICK_ARCHITECTURES if quick else ARCHITECTURES
    arrays, label = load_bench_data(data, quick, n_train)
    if effect == "dropout":
        rates = dropout if isinstance(dropout, tuple) else (dropout, dropout)
        base_name, effect_name = "no dropout", "dropout " + "/".join(f"{r:g}" for r in rates)
        with_effect = dict(dropout=dropout, variant="+dropout")
    else:
        base_name, effect_name = "per epoch", "per batch"
        with_effect = dict(sync_every_batch=True, variant="+sync/batch")
    settings = dict(batch_size=batch_size, solver=solver, clock=clock)
    out(
        f"Effect of {effect} on {label}: {len(arrays[0])} train samples, float32, tanh, "
        f"{solver}, batch {batch_size}, {epochs} epochs (the first not timed), "
        f"interleaved, {'CPU' if clock == 'cpu' else 'wall'} time"
        + ("  [QUICK: timings mean nothing]" if quick else "")
    )
    if effect == "per-batch-sync":
        out("  per epoch: the batch losses summed on the device, read and checked once "
            "per epoch (skdfa's loop)")
        out("  per batch: each batch's loss read on the host and checked (the loop before)")
    pairs = {}
    for hidden in architectures:
        runs = []
        for device in devices:
            for rule in rules:
                runs.append(bench_learner(rule, hidden, arrays, epochs, seed, device, **settings))
                runs.append(bench_learner(rule, hidden, arrays, epochs, seed, device,
                                          **settings, **with_effect))
        results = run_interleaved(runs, epochs, out if progress else None)
        arch = _arch(results[0].units)
        pairs[arch] = list(zip(results[::2], results[1::2]))
        out("")
        out(f"{arch} tanh")
        header = (f"{'learner':<26} {base_name:>12} {effect_name:>16} "
                  f"{'ratio':>7} {'range':>13}")
        out(header)
        out("-" * len(header))
        for base, other in pairs[arch]:
            # Paired by epoch: both ran one after the other.
            ratios = np.array(other.epoch_seconds) / np.array(base.epoch_seconds)
            out(
                f"{base.name:<26} {base.seconds_per_epoch:>12.3f} "
                f"{other.seconds_per_epoch:>16.3f} {np.median(ratios):>6.3f}x "
                f"{f'{ratios.min():.3f}-{ratios.max():.3f}':>13}"
            )
    out("")
    out(f"{base_name}, {effect_name}: median seconds per timed epoch; ratio: the median over epochs of the epoch "
        f"with {effect} over the epoch without it just before (range: the smallest and "
        "largest of those ratios).")
    return pairs


def _print_table(arch, rows, rate, n_train, out):
    reference = rows[0].seconds_per_epoch
    out("")
    out(f"{arch} tanh    (float32 matmul rate on these shapes: {rate:.1f} GFLOP/s)")
    header = (
        f"{'learner':<22} {'s/epoch':>8} {'vs sklearn':>10} {'GFLOP/s':>8} "
        f"{'% matmul':>8} {'peak MB':>8} {'test acc':>8}"
    )
    out(header)
    out("-" * len(header))
    for row in rows:
        gflops = row.gflops(n_train)
        out(
            f"{row.name:<22} {row.seconds_per_epoch:>8.3f} "
            f"{reference / row.seconds_per_epoch:>9.2f}x {gflops:>8.1f} "
            f"{100 * gflops / rate:>7.0f}% "
            + (f"{row.peak_bytes / 2**20:>8.1f} " if row.device == "numpy" else f"{'-':>8} ")
            + f"{row.accuracy:>8.4f}"
        )


def _targets(results, rates, n_train, real_data, accuracy=True):
    """``(description, value, passed)`` rows; ``passed`` is None where the
    target does not apply (accuracy targets on other data than Fashion-MNIST).
    ``accuracy=False`` leaves the accuracy targets out."""
    targets = []
    archs = list(results)
    for arch in archs:
        on_cpu = {row.learner: row for row in results[arch] if row.device == "cpu"}
        if "dfa" in on_cpu and "torch-loop" in on_cpu:
            ratio = on_cpu["dfa"].seconds_per_epoch / on_cpu["torch-loop"].seconds_per_epoch
            targets.append((
                f"skdfa dfa on torch CPU within {TORCH_LOOP_TARGET}x of the plain "
                f"PyTorch DFA loop's time on {arch}",
                f"{ratio:.2f}x",
                ratio <= TORCH_LOOP_TARGET,
            ))
    for arch, minimum in zip(archs, SPEEDUP_TARGETS):
        rows = {row.learner: row for row in results[arch] if row.device == "numpy"}
        if "dfa" not in rows:
            continue
        dfa, mlp = rows["dfa"], rows["mlp"]
        speedup = mlp.seconds_per_epoch / dfa.seconds_per_epoch
        targets.append((
            f"DFA >= {minimum}x faster per epoch than MLPClassifier on {arch}",
            f"{speedup:.2f}x",
            speedup >= minimum,
        ))
        fraction = dfa.gflops(n_train) / rates[arch]
        targets.append((
            f"DFA reaches >= {MATMUL_FRACTION_TARGET:.0%} of the matmul rate on {arch}",
            f"{fraction:.0%}",
            fraction >= MATMUL_FRACTION_TARGET,
        ))
    rows = {row.learner: row for row in results[archs[0]] if row.device == "numpy"}
    if "dfa" in rows and accuracy:
        dfa = rows["dfa"]
        bp = rows.get("bp", rows["mlp"])
        targets.append((
            f"DFA test accuracy >= {ACCURACY_TARGET:.1%} on Fashion-MNIST {archs[0]}",
            f"{dfa.accuracy:.2%}",
            dfa.accuracy >= ACCURACY_TARGET if real_data else None,
        ))
        targets.append((
            f"DFA within {100 * BP_GAP_TARGET:.0f} point of BP ({bp.name}) at equal "
            f"settings on {archs[0]}",
            f"{100 * (dfa.accuracy - bp.accuracy):+.2f} points",
            dfa.accuracy >= bp.accuracy - BP_GAP_TARGET if real_data else None,
        ))
    return targets


def parse_rules(text):
    return _common.parse_rules(text, _common.rule_names())


def add_arguments(parser):
    """The benchmark's command-line options (shared by ``skdfa bench`` and the script)."""
    parser.add_argument(
        "--data", default="fashion-mnist",
        help="fashion-mnist (synthetic stand-in if absent), synthetic, or a folder "
             "of MNIST-style IDX files (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=_common.parse_positive_int, default=5,
                        help="epochs per learner; the first is not timed (default: %(default)s)")
    parser.add_argument("--rules", type=parse_rules, default=("dfa", "bp"),
                        help="skdfa rules to time, comma-separated, from "
                             f"{','.join(_common.rule_names())} or package.module:ClassName "
                             "(a skdfa.rules.LearningRule subclass); MLPClassifier always "
                             "runs (default: dfa,bp)")
    parser.add_argument("--hidden", type=_common.parse_widths, action="append", default=None,
                        metavar="WIDTHS",
                        help="hidden widths of an architecture, e.g. 800 or 1000,1000,1000; "
                             "repeat for several (default: both of those)")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny nets on {QUICK_SAMPLES[0]} samples, for tests")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    # --train-samples and --devices: the spellings of earlier versions.
    parser.add_argument("--n-train", "--train-samples", dest="train_samples",
                        type=_common.parse_positive_int, default=None,
                        help="train on the first N samples only (default: all)")
    parser.add_argument("--device", "--devices", dest="devices",
                        type=_common.parse_devices, default=None,
                        help="where skdfa trains, comma-separated, from "
                             f"{','.join(DEVICES)}: numpy arrays or torch tensors (needs "
                             "torch); each torch device adds the plain PyTorch DFA loop "
                             "(default: numpy and every torch device of this machine)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    parser.add_argument("--threads", type=_common.parse_positive_int, default=None,
                        help="BLAS and torch threads (default: all; BLAS and torch decide)")
    effect = parser.add_argument_group(
        "the effect of one setting",
        "With --effect-of, each skdfa learner (--rules, --device, --hidden) runs twice, "
        "without and with the setting, interleaved, and the report is the ratio of their "
        "epoch times (no MLPClassifier, no PyTorch loop).",
    )
    effect.add_argument("--effect-of", choices=EFFECTS, default=None,
                        help="dropout: --dropout against none; per-batch-sync: every "
                             "batch's loss read on the host, against once per epoch "
                             "(torch devices)")
    effect.add_argument("--batch-size", type=_common.parse_positive_int, default=None,
                        help=f"(--effect-of only) batch size (default: {BATCH_SIZE})")
    effect.add_argument("--solver", choices=("adam", "sgd", "rmsprop"), default=None,
                        help="(--effect-of only) optimizer (default: adam)")
    effect.add_argument("--clock", choices=tuple(CLOCKS), default=None,
                        help="(--effect-of only) wall time, or this process's CPU time, "
                             "which other jobs do not inflate (numpy and torch CPU) "
                             "(default: wall)")
    effect.add_argument("--dropout", type=_common.parse_dropout, default=None,
                        help="(--effect-of dropout only) INPUT,HIDDEN rates or one rate "
                             "(default: 0.1,0.5)")


@contextlib.contextmanager
def _threads(n):
    """BLAS and torch use ``n`` threads in this block (all when None)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = None
    try:
        import torch
    except ImportError:
        pass
    saved = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(saved)


def usage_problem(args):
    """What is wrong with the combination of ``args``'s options, or None."""
    effect_only = {"--batch-size": args.batch_size, "--solver": args.solver,
                   "--clock": args.clock, "--dropout": args.dropout}
    given = [name for name, value in effect_only.items() if value is not None]
    if args.effect_of is None and given:
        return (f"{', '.join(given)} only with --effect-of: the speed table runs every "
                f"learner at adam, batch {BATCH_SIZE}, without dropout")
    if args.effect_of not in (None, "dropout") and args.dropout is not None:
        return "--dropout only with --effect-of dropout"
    if args.effect_of == "per-batch-sync" and args.devices == ("numpy",):
        return "--effect-of per-batch-sync needs a torch device (--device cpu, cuda or mps)"
    return None


def run(args):
    """Run the benchmark from parsed ``args``; returns the exit status."""
    devices = args.devices
    if devices is None:
        devices, note = available_devices()
        if note:
            print(note)
    for device in devices:
        _common.check_device(device)
    with _threads(args.threads):
        if args.effect_of is not None:
            run_effect(
                args.effect_of, data=args.data, epochs=args.epochs, rules=args.rules,
                architectures=args.hidden, quick=args.quick, seed=args.seed,
                progress=not args.quiet, devices=devices, n_train=args.train_samples,
                batch_size=args.batch_size or BATCH_SIZE, solver=args.solver or "adam",
                clock=args.clock or "wall",
                dropout=(0.1, 0.5) if args.dropout is None else args.dropout,
            )
            return 0
        run_benchmark(
            data=args.data, epochs=args.epochs, rules=args.rules,
            architectures=args.hidden, quick=args.quick, seed=args.seed,
            progress=not args.quiet,
            devices=devices,
            n_train=args.train_samples,
        )
    return 0
