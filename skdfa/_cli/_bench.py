"""The speed benchmark: skdfa against scikit-learn's MLPClassifier and PyTorch.

All train the same architecture on the same float32 data with adam, batch
200 and the same epochs. skdfa runs on numpy arrays and, where torch is
installed, on torch tensors (CPU, and CUDA or MPS where the machine has one),
next to the reference peer: a plain PyTorch DFA loop written the way DFA
research code writes it. Each epoch is one ``partial_fit`` call, timed alone
(no validation, no data loading), and the learners take their epochs in turn,
with the same threads, none left running into the next one's epoch
(``run_interleaved``); a learner's time is the median of its epochs. The first
epoch, which allocates the network, is measured for memory (``tracemalloc``)
instead of speed. The achieved training rate is compared with the float32
matrix-multiply rate of this machine, measured in the same run on the
training's own matrix shapes, and the project's targets are printed as MET or
MISS. With ``--net``, convolutional nets (:data:`CONV_NETS`) take the dense
nets' place: skdfa's rules only, their FLOPs counted on the layers, the rate
measured on the convolutions' im2col products.

The command is here; the measurements in ``_bench_measure.py``, the reference
learners in ``_bench_reference.py``, the tables and targets in
``_bench_report.py``. Run it with ``skdfa bench`` or ``python
benchmarks/bench_mlp.py``.
"""

import argparse
import math
import os

import numpy as np

from .. import _compiled
from . import _bench_report as report
from . import _common
from ._bench_measure import (
    BATCH_SIZE,
    CLOCKS,
    BenchResult,
    LearnerThreads,
    arch,
    bench_learner,
    matmul_rate,
    partial_fit_overhead,
    run_interleaved,
)
from ._bench_reference import torch_dfa_loop
from ._common import CommandError

ARCHITECTURES = [(800,), report.DEEP_HIDDEN]
QUICK_ARCHITECTURES = [(32,), (32, 32, 32)]
QUICK_SAMPLES = (600, 200)
DEVICES = _common.DEVICES

CONV_NETS = {
    # biotorch's LeNet for MNIST on 32x32 images (ConvDFAClassifier's defaults).
    "lenet": {"conv_layers": ((6, 5), (16, 5), (120, 5)), "pool_size": 2,
              "hidden_layer_sizes": (84,)},
    # The layers of biotorch's LeNet for CIFAR-10, on the bench's one-channel images.
    "lenet-cifar": {"conv_layers": ((32, 3), (64, 3), (128, 3)), "pool_size": 2,
                    "global_pool": True, "hidden_layer_sizes": (256,)},
}
"""``--net``: the convolutional nets of the speed table, as
:class:`~skdfa.ConvDFAClassifier` parameters (relu, on 1x32x32 images)."""
CONV_ACTIVATION = "relu"  # biotorch's LeNets'
IMAGE_SIDE = 32


def conv_net_name(name, n_classes):
    """``lenet conv 6,16,120 (5x5), dense 84, 1x32x32->10``: a table's title."""
    net = CONV_NETS[name]
    channels = ",".join(str(c) for c, _ in net["conv_layers"])
    kernels = ",".join(sorted({f"{k}x{k}" for _, k in net["conv_layers"]}))
    pooling = ", global pool" if net.get("global_pool") else ""
    dense = ",".join(map(str, net["hidden_layer_sizes"]))
    return (f"{name} conv {channels} ({kernels}){pooling}, dense {dense}, "
            f"1x{IMAGE_SIDE}x{IMAGE_SIDE}->{n_classes}")


def as_32x32_images(arrays):
    """The splits with their 28x28 images zero-padded to 32x32 (2 pixels a
    side), as biotorch feeds MNIST to its LeNet; other sizes raise."""
    X_train, X_test, y_train, y_test = arrays
    side = math.isqrt(X_train.shape[1])
    if side * side != X_train.shape[1] or side > IMAGE_SIDE:
        raise CommandError(f"--net needs square images of at most {IMAGE_SIDE}x{IMAGE_SIDE} "
                           f"pixels, one channel; the data has {X_train.shape[1]} features.")
    margin = (IMAGE_SIDE - side) // 2, IMAGE_SIDE - side - (IMAGE_SIDE - side) // 2

    def pad(X):
        images = np.pad(X.reshape(-1, side, side), ((0, 0), margin, margin))
        return images.reshape(len(X), -1)

    return pad(X_train), pad(X_test), y_train, y_test


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


def run_benchmark(
    *, data="fashion-mnist", epochs=5, rules=("dfa", "bp"), architectures=None,
    quick=False, seed=0, out=print, progress=True, devices=("numpy",), n_train=None,
    threads=None, reverse=False, nets=None,
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
        Hidden widths; ``None`` is 784-800-10 and 784-1024-1024-1024-1024-10,
        the nets of the targets (tiny nets with ``quick``).
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
    threads : int, default=None
        BLAS, OpenMP and torch threads of every learner; None: every core.
    reverse : bool, default=False
        Step the learners in the reverse order (see :func:`run_interleaved`):
        the report is the same learners in the same places.
    nets : sequence of str, default=None
        Convolutional nets of :data:`CONV_NETS` to time instead of the dense
        ``architectures``, on the images padded to 32x32: only skdfa's
        rules run (MLPClassifier and the PyTorch loop are dense), and the
        rate they are compared with is np.matmul's on the convolutions'
        im2col product shapes.

    Returns
    -------
    report : dict
        ``results`` (a dict of architecture -> list of BenchResult),
        ``matmul_gflops`` (architecture -> rate) and ``targets`` (list of
        ``(description, value, passed)``).
    """
    if nets and architectures:
        raise ValueError("architectures are dense nets: give them or nets, not both.")
    if architectures is None:
        architectures = QUICK_ARCHITECTURES if quick else ARCHITECTURES
    subset = quick or n_train is not None
    arrays, label = load_bench_data(data, quick, n_train)
    if nets:
        arrays = as_32x32_images(arrays)
        label += f", padded to {IMAGE_SIDE}x{IMAGE_SIDE}"
    X_train, X_test = arrays[0], arrays[1]
    n_classes = len(np.unique(arrays[2]))
    activation = CONV_ACTIVATION if nets else "tanh"
    out(
        f"Benchmark on {label}: {len(X_train)} train / {len(X_test)} test samples, "
        f"{X_train.shape[1]} features, float32, {activation}, adam lr=0.001, alpha=1e-4, "
        f"batch {BATCH_SIZE}, {epochs} epochs"
        + ("  [QUICK: timings mean nothing]" if quick else "")
    )
    out(_compiled.description())
    learner_threads = LearnerThreads(threads)
    timing = dict(min_time=0.01, repeats=1) if quick else {}
    # A dense net by its hidden widths, a conv net by its name and layers.
    specs = ([(CONV_NETS[net]["hidden_layer_sizes"], net) for net in nets] if nets
             else [(hidden, None) for hidden in architectures])
    results, rates = {}, {}
    for hidden, net in specs:
        units = [X_train.shape[1], *hidden, n_classes]
        if net is None:
            name, network, conv, settings = arch(units), units, None, {}
            # MLPClassifier and the PyTorch loop: the dense nets' reference peers.
            references = ("mlp",)
        else:
            from .._conv_estimator import ConvDFAClassifier

            conv = {key: value for key, value in CONV_NETS[net].items()
                    if key != "hidden_layer_sizes"}
            # The layers the learners will build, for the rate on their products.
            network = ConvDFAClassifier(**conv)._make_layers(units)
            name, settings = conv_net_name(net, n_classes), {"activation": CONV_ACTIVATION}
            references = ()
        runs = [
            bench_learner(rule, hidden, arrays, epochs, seed, conv=conv, **settings)
            for rule in (*references, *rules)
            if "numpy" in devices or rule == "mlp"
        ]
        for device in devices:
            if device == "numpy":
                continue
            runs += [
                bench_learner(rule, hidden, arrays, epochs, seed, device, conv=conv, **settings)
                for rule in rules
            ]
            if references:
                runs.append(torch_dfa_loop(hidden, arrays, epochs, seed, device))
        # Measured before and after the training, the faster counting: a busy
        # machine only ever lowers the rate.
        with learner_threads:
            before = matmul_rate(network, **timing)
        results[name] = run_interleaved(runs, epochs, out if progress else None,
                                        threads=learner_threads, reverse=reverse)
        with learner_threads:
            rates[name] = max(before, matmul_rate(network, **timing))
    n_train = len(X_train)
    for name, rows in results.items():
        report.print_table(name, rows, rates[name], n_train, out)
    out("")
    out(report.CONV_FLOP_EXPLANATION if nets else report.FLOP_EXPLANATION)
    out("")
    report.print_threads(learner_threads, [row for rows in results.values() for row in rows],
                         out)
    if reverse:
        out("Order: the learners took their epochs in the reverse order of the table.")
    # Accuracies after training on part of the data say nothing about the
    # accuracy targets, which are for the full training set.
    # The accuracy targets are the dense nets'.
    targets = report.targets(
        results, rates, n_train, real_data=label == "Fashion-MNIST",
        accuracy=not (subset or nets),
    )
    report.print_targets(targets, out)
    if subset and not nets:
        out(f"  (accuracy targets not evaluated: trained on {n_train} samples, "
            f"{'--quick' if quick else '--n-train'})")
    return {"results": results, "matmul_gflops": rates, "targets": targets}


EFFECTS = ("dropout", "per-batch-sync")
"""What ``--effect-of`` times: each learner with and without it."""


def run_effect(
    effect, *, data="fashion-mnist", epochs=5, rules=("dfa",), architectures=None,
    quick=False, seed=0, out=print, progress=True, devices=("numpy",), n_train=None,
    batch_size=BATCH_SIZE, solver="adam", dropout=(0.1, 0.5), clock="wall", threads=None,
    reverse=False,
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
    data, epochs, rules, architectures, quick, seed, out, progress, devices, n_train, \
threads, reverse
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
    learner_threads = LearnerThreads(threads)
    pairs = {}
    for hidden in architectures:
        runs = []
        for device in devices:
            for rule in rules:
                runs.append(bench_learner(rule, hidden, arrays, epochs, seed, device, **settings))
                runs.append(bench_learner(rule, hidden, arrays, epochs, seed, device,
                                          **settings, **with_effect))
        results = run_interleaved(runs, epochs, out if progress else None,
                                  threads=learner_threads, reverse=reverse)
        name = arch(results[0].units)
        # Paired by epoch: each pair's epochs ran one after the other.
        pairs[name] = list(zip(results[::2], results[1::2]))
        report.print_effect_table(name, pairs[name], base_name, effect_name, out)
    out("")
    out(f"{base_name}, {effect_name}: median seconds per timed epoch; ratio: the median over "
        f"epochs of the epoch with {effect} over the epoch without it next to it (range: the "
        "smallest and largest of those ratios).")
    report.print_threads(
        learner_threads, [row for rows in pairs.values() for pair in rows for row in pair], out
    )
    report.print_targets(report.effect_targets(effect, pairs, batch_size), out)
    return pairs


def run_to_accuracy(
    accuracy, *, data="fashion-mnist", epochs=5, rules=("dfa", "bp"), architectures=None,
    quick=False, seed=0, out=print, progress=True, devices=("numpy",), n_train=None,
    threads=None, reverse=False, learning_rates=(1e-3,), plot=None,
):
    """Time each learner to a held-out accuracy: the wall time and epochs it
    takes to first reach ``accuracy`` on the test split, and its final
    accuracy.

    MLPClassifier (numpy) and each skdfa rule on each device train
    ``epochs`` epochs at each of ``learning_rates``, interleaved; the
    accuracy is measured after every epoch, untimed, and an epoch's time
    counts from the first epoch on (no memory tracing).

    Parameters
    ----------
    accuracy : float
        The held-out accuracy to reach, in (0, 1].
    data, epochs, rules, architectures, quick, seed, out, progress, devices, n_train, \
threads, reverse
        As :func:`run_benchmark` (the PyTorch loop does not run).
    learning_rates : sequence of float, default=(0.001,)
        The sweep: each learner trains at each rate.
    plot : str or Path, default=None
        Where to save a figure of held-out accuracy against training seconds.

    Returns
    -------
    rows : dict
        Architecture -> list of ``(learning rate, BenchResult)``.
    """
    if architectures is None:
        architectures = QUICK_ARCHITECTURES if quick else ARCHITECTURES
    arrays, label = load_bench_data(data, quick, n_train)
    learner_threads = LearnerThreads(threads)
    out(f"Time to {accuracy:.2%} held-out accuracy on {label}: {len(arrays[0])} train / "
        f"{len(arrays[1])} held-out (test) samples, float32, tanh, adam, batch {BATCH_SIZE}, "
        f"up to {epochs} epochs, learning rates {', '.join(f'{r:g}' for r in learning_rates)}"
        + ("  [QUICK: timings mean nothing]" if quick else ""))
    learners = [(rule, "numpy") for rule in ("mlp", *rules) if "numpy" in devices or rule == "mlp"]
    learners += [(rule, device) for device in devices if device != "numpy" for rule in rules]
    table = {}
    for hidden in architectures:
        rates, runs = [], []
        for rule, device in learners:
            for rate in learning_rates:
                rates.append(rate)
                runs.append(bench_learner(rule, hidden, arrays, epochs, seed, device,
                                          trace_memory=False, score_each_epoch=True,
                                          learning_rate_init=rate))
        results = run_interleaved(runs, epochs, out if progress else None,
                                  threads=learner_threads, reverse=reverse)
        name = arch(results[0].units)
        table[name] = list(zip(rates, results))
        report.print_to_accuracy_table(name, table[name], accuracy, out)
    out("")
    out("epochs, seconds: to the first epoch at or above the accuracy (every epoch's time, "
        "the first included; '-': not reached); * the learner's fastest rate.")
    report.print_threads(learner_threads, [row for rows in table.values() for _, row in rows],
                         out)
    if plot is not None:
        report.plot_to_accuracy(table, accuracy, plot)
        out(f"plot: {plot}")
    return table


PARTIAL_FIT_HIDDEN = (64, 64)


def run_partial_fit_overhead(
    *, data="fashion-mnist", rules=("dfa",), architectures=None, quick=False, seed=0,
    out=print, devices=("numpy",), threads=None, calls=15,
):
    """Time what a ``partial_fit`` call costs beyond its batches' work
    (:func:`~skdfa._cli._bench_measure.partial_fit_overhead`) for each skdfa
    learner, and print it with its target.

    Parameters
    ----------
    data, rules, quick, seed, out, devices, threads
        As :func:`run_benchmark`.
    architectures : list of tuple of int, default=None
        Hidden widths; None: 64-64, the target's net.
    calls : int, default=15
        Calls of each kind per learner.

    Returns
    -------
    overheads : dict
        ``(architecture, learner name)`` -> the seconds of
        :func:`~skdfa._cli._bench_measure.partial_fit_overhead`.
    """
    if architectures is None:
        architectures = [PARTIAL_FIT_HIDDEN]
    arrays, label = load_bench_data(data, quick)
    batches = (1, min(8, len(arrays[0]) // BATCH_SIZE))
    learner_threads = LearnerThreads(threads)
    out(f"partial_fit overhead on {label}: float32, tanh, adam, batch {BATCH_SIZE}; calls of "
        f"{batches[0]} and {batches[1]} batches, alternately, {calls} of each"
        + ("  [QUICK: timings mean nothing]" if quick else ""))
    header = (f"{'learner':<26} {f'{batches[0]} batch':>9} {f'{batches[1]} batches':>10} "
              f"{'per batch':>10} {'fixed/call':>11}")
    overheads, rows = {}, []
    for hidden in architectures:
        name = arch([arrays[0].shape[1], *hidden, len(np.unique(arrays[2]))])
        out("")
        out(f"{name} tanh (milliseconds)")
        out(header)
        out("-" * len(header))
        for device in devices:
            for rule in rules:
                seconds = partial_fit_overhead(rule, hidden, arrays, device, batches=batches,
                                               calls=calls, seed=seed, threads=learner_threads)
                learner = BenchResult(rule, [], device=device).name
                overheads[name, learner] = seconds
                out(f"{learner:<26} {1e3 * seconds['small']:>9.2f} "
                    f"{1e3 * seconds['large']:>10.2f} {1e3 * seconds['batch']:>10.2f} "
                    f"{1e3 * seconds['fixed']:>11.2f}")
                rows.append((f"{learner} on {name}", seconds["fixed"],
                             tuple(hidden) == PARTIAL_FIT_HIDDEN))
    out("")
    out(f"per batch: the time of the {batches[1]}-batch calls less that of the 1-batch calls, "
        f"over {batches[1] - 1}; fixed/call: a 1-batch call less one batch (medians over the "
        "calls).")
    out(f"Threads: {learner_threads.describe()}.")
    report.print_targets(report.partial_fit_targets(rows), out)
    return overheads


def _parse_accuracy(text):
    value = _common.parse_positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected an accuracy in (0, 1], got {text!r}")
    return value


def _parse_rates(text):
    return tuple(_common.parse_positive_float(rate) for rate in text.split(","))


def _parse_nets(text):
    return _common.parse_names(text, tuple(CONV_NETS), "net")


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
                             f"{','.join(_common.rule_names())} or package.module:NAME "
                             "(a skdfa.rules.LearningRule subclass or instance); "
                             "MLPClassifier always runs (default: dfa,bp)")
    parser.add_argument("--hidden", type=_common.parse_widths, action="append", default=None,
                        metavar="WIDTHS",
                        help="hidden widths of an architecture, e.g. 800 or "
                             "1024,1024,1024,1024; repeat for several (default: both of "
                             "those, the nets of the targets)")
    parser.add_argument("--net", type=_parse_nets, default=None, metavar="NETS",
                        help="time convolutional nets instead of dense ones, comma-separated "
                             f"from {','.join(CONV_NETS)} (relu, the images padded to 32x32; "
                             "skdfa's rules only, against the np.matmul rate on the "
                             "convolutions' im2col shapes)")
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
                        help="BLAS, OpenMP and torch threads of every learner's epochs "
                             "(default: every core this process may use)")
    parser.add_argument("--reverse", action="store_true",
                        help="the learners take their epochs in the reverse order (the "
                             "report's rows stay in place): ratios that change with it "
                             "measure the order, not the learners")
    parser.add_argument("--to-accuracy", type=_parse_accuracy, default=None, metavar="A",
                        help="instead of the speed table, the wall time and epochs each "
                             "learner takes to first reach held-out (test) accuracy A, "
                             "e.g. 0.85, and its final accuracy, over --epochs epochs")
    parser.add_argument("--lr", type=_parse_rates, default=None, metavar="RATES",
                        help="(--to-accuracy only) learning rates to sweep, comma-separated "
                             "(default: 0.001)")
    parser.add_argument("--plot", default=None, metavar="PATH",
                        help="(--to-accuracy only) save a figure of held-out accuracy "
                             "against training seconds (needs matplotlib)")
    parser.add_argument("--partial-fit", action="store_true",
                        help="instead of the speed table, time what a partial_fit call "
                             "costs beyond its batches' work, for each skdfa learner "
                             "(--rules, --device; --hidden, default 64,64)")
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


def usage_problem(args):
    """What is wrong with the combination of ``args``'s options, or None."""
    effect_only = {"--batch-size": args.batch_size, "--solver": args.solver,
                   "--clock": args.clock, "--dropout": args.dropout}
    given = [name for name, value in effect_only.items() if value is not None]
    if args.effect_of is None and given:
        return (f"{', '.join(given)} only with --effect-of: the speed table runs every "
                f"learner at adam, batch {BATCH_SIZE}, without dropout")
    if args.net is not None and (args.hidden is not None or args.to_accuracy is not None
                                 or args.partial_fit or args.effect_of is not None):
        return ("--net times conv nets in the speed table: no --hidden, --to-accuracy, "
                "--partial-fit or --effect-of")
    if (args.lr is not None or args.plot is not None) and args.to_accuracy is None:
        return "--lr and --plot only with --to-accuracy"
    if args.to_accuracy is not None and (args.effect_of is not None or given
                                         or args.partial_fit):
        return "--to-accuracy trains at the speed table's settings: no --effect-of, its " \
               "options or --partial-fit"
    if args.partial_fit and (args.effect_of is not None or given or args.reverse):
        return ("--partial-fit times partial_fit calls alone: no --effect-of, its options "
                "or --reverse")
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
    common = dict(
        data=args.data, epochs=args.epochs, rules=args.rules, architectures=args.hidden,
        quick=args.quick, seed=args.seed, progress=not args.quiet, devices=devices,
        n_train=args.train_samples, threads=args.threads, reverse=args.reverse,
    )
    if args.to_accuracy is not None:
        run_to_accuracy(args.to_accuracy, **common, learning_rates=args.lr or (1e-3,),
                        plot=args.plot)
    elif args.partial_fit:
        run_partial_fit_overhead(
            data=args.data, rules=args.rules, architectures=args.hidden, quick=args.quick,
            seed=args.seed, devices=devices, threads=args.threads,
        )
    elif args.effect_of is not None:
        run_effect(
            args.effect_of, **common, batch_size=args.batch_size or BATCH_SIZE,
            solver=args.solver or "adam", clock=args.clock or "wall",
            dropout=(0.1, 0.5) if args.dropout is None else args.dropout,
        )
    else:
        run_benchmark(**common, nets=args.net)
    return 0
