"""The ``skdfa`` command: how does DFA compare with back-propagation?

``skdfa demo`` trains DFA, FA, BP, scikit-learn's MLPClassifier, an
RDClassifier and a StackingDFA on the digits, prints a table (test accuracy,
fit seconds, parameters, mean final alignment angle) and writes plots;
``skdfa compare`` does the same on Fashion-MNIST or any folder of IDX files;
``skdfa bench`` is the speed benchmark (``_bench.py``); ``skdfa reproduce
nokland2016`` trains the DFA paper's MNIST table (``_reproduce.py``).

Bad input (unknown option, missing or corrupt data, a diverged fit) prints
one line and exits non-zero: 2 for usage errors, 1 for the others.
"""

import argparse
import contextlib
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from . import __version__, _bench

LEARNERS = {
    "dfa": "DFA",
    "fa": "FA",
    "bp": "BP",
    "drtp": "DRTP",
    "sdfa": "sDFA",
    "usf": "uSF",
    "frsf": "frSF",
    "brsf": "brSF",
    "kp": "KP",
    "dkp": "DKP",
    "mlp": "MLPClassifier (sklearn)",
    "rd": "RDClassifier (dfa)",  # RD hidden layers, dense output layer
    "stacking": "StackingDFA",
}
"""Learner keys of ``--rules`` and their names in the table. The first ten
are :class:`DFAClassifier` rules; ``mlp`` is scikit-learn's back-propagation."""

DEMO_LEARNERS = ("dfa", "fa", "bp", "mlp", "rd", "stacking")
COMPARE_LEARNERS = ("dfa", "bp", "mlp")  # with one hidden layer FA is DFA
STACKING_SIZE = 5
VALIDATION_FRACTION = 0.1


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, raised for :func:`main` to report."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _learners(text):
    return _bench.parse_names(text, LEARNERS, "learner")


def _dropout(text):
    try:
        rates = tuple(float(r) for r in text.split(","))
    except ValueError:
        rates = ()
    if len(rates) not in (1, 2) or not all(0 <= r < 1 for r in rates):
        raise argparse.ArgumentTypeError(
            f"invalid dropout {text!r}: one rate or INPUT,HIDDEN, each in [0, 1)"
        )
    return rates[0] if len(rates) == 1 else rates


def _add_training_arguments(parser, *, hidden, epochs, learners, lr, threads):
    parser.add_argument("--hidden", type=_bench.parse_widths, default=hidden,
                        metavar="WIDTHS",
                        help="hidden widths, comma-separated, e.g. 256 or 500,500 "
                             f"(default: {','.join(map(str, hidden))})")
    parser.add_argument("--activation", default="tanh",
                        choices=["tanh", "relu", "logistic", "identity"],
                        help="hidden activation (default: %(default)s)")
    parser.add_argument("--epochs", type=_bench.parse_positive_int, default=epochs,
                        help="training epochs of every learner (default: %(default)s)")
    parser.add_argument("--rules", type=_learners, default=learners, metavar="LEARNERS",
                        help=f"comma-separated, from {','.join(LEARNERS)} (mlp is "
                             f"sklearn's MLPClassifier; default: {','.join(learners)})")
    parser.add_argument("--lr", type=float, default=lr,
                        help="adam's learning rate (default: %(default)s)")
    parser.add_argument("--dropout", type=_dropout, default=0.0, metavar="RATES",
                        help="dropout of skdfa's networks: HIDDEN or INPUT,HIDDEN, e.g. "
                             "0.1,0.3 (MLPClassifier has none; default: %(default)s)")
    parser.add_argument("--batch-size", type=_bench.parse_positive_int, default=200,
                        help="mini-batch size (default: %(default)s)")
    parser.add_argument("--n-train", type=_bench.parse_positive_int, default=None,
                        help="use the first N training samples (default: all)")
    parser.add_argument("--threads", type=_bench.parse_positive_int, default=threads,
                        help="BLAS threads (default: "
                             f"{threads or 'all; BLAS decides'})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("skdfa-output"),
                        help="folder of the plots (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="do not write plots")
    parser.add_argument("--quiet", action="store_true", help="no progress, only the table")


def _build_parser():
    parser = _Parser(
        prog="skdfa",
        description="Compare Direct Feedback Alignment with back-propagation: "
                    "accuracy, speed and alignment.",
    )
    parser.add_argument("--version", action="version", version=f"skdfa {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="DFA, FA, BP, MLPClassifier, RD and stacking on the digits (< 1 min)",
        description="Train DFA, FA and BP (skdfa), scikit-learn's MLPClassifier, an "
                    "RDClassifier and a StackingDFA on scikit-learn's digits; print a "
                    "table and write plots.",
    )
    # The digits' matrices are tiny: one BLAS thread is faster than several.
    _add_training_arguments(demo, hidden=(128, 128), epochs=40, learners=DEMO_LEARNERS,
                            lr=1e-2, threads=1)

    compare = commands.add_parser(
        "compare", help="the demo's table on real data (Fashion-MNIST or IDX files)",
        description="The demo's comparison on digits, Fashion-MNIST or a folder of "
                    "MNIST-style IDX files, with the shipped train/test split.",
    )
    compare.add_argument("--data", default="fashion-mnist",
                         help="digits, fashion-mnist, mnist (downloaded once by "
                              "skdfa.datasets.fetch_mnist), or a folder of IDX files "
                              "({train,t10k}-{images,labels}-idx*-ubyte[.gz]) "
                              "(default: %(default)s)")
    _add_training_arguments(compare, hidden=(800,), epochs=10, learners=COMPARE_LEARNERS,
                            lr=1e-3, threads=None)

    bench = commands.add_parser(
        "bench", help="speed benchmark: skdfa vs MLPClassifier on Fashion-MNIST",
        description="Seconds per epoch, GFLOP/s against this machine's matmul rate, "
                    "peak memory and test accuracy of skdfa and MLPClassifier at equal "
                    "settings.",
    )
    _bench.add_arguments(bench)
    _add_reproduce_parser(commands)
    return parser


def _add_reproduce_parser(commands):
    from . import _reproduce

    reproduce = commands.add_parser(
        "reproduce", help="a paper's table: nokland2016 (the DFA paper's MNIST table)",
        description="Train the MNIST table of Nøkland (2016), 'Direct Feedback Alignment "
                    "Provides Learning in Deep Neural Networks' (rows: networks; columns: "
                    "BP, FA, DFA) with the recipe of the author's code, and print it next "
                    "to the paper's numbers. The full table is long: 21 cells of 300 epochs.",
    )
    reproduce.add_argument("paper", choices=["nokland2016"], help="the paper")
    reproduce.add_argument("--data", default="mnist",
                           help="mnist (downloaded once by skdfa.datasets.fetch_mnist) or a "
                                "folder of IDX files (default: %(default)s)")
    reproduce.add_argument("--rows", type=lambda t: _bench.parse_names(t, _reproduce.ROWS, "row"),
                           default=tuple(_reproduce.ROWS), metavar="ROWS",
                           help=f"comma-separated, from {','.join(_reproduce.ROWS)} "
                                "(default: all)")
    reproduce.add_argument("--rules", default=_reproduce.RULES, metavar="RULES",
                           type=lambda t: _bench.parse_names(t, _reproduce.RULES, "rule"),
                           help="comma-separated, from bp,fa,dfa (default: all)")
    reproduce.add_argument("--epochs", type=_bench.parse_positive_int,
                           default=_reproduce.PAPER_EPOCHS,
                           help="training epochs of every cell (default: %(default)s, the "
                                "paper's code)")
    reproduce.add_argument("--n-train", type=_bench.parse_positive_int, default=None,
                           help="use the first N training samples (default: all)")
    reproduce.add_argument("--seed", type=int, default=0,
                           help="random seed of every cell (default: %(default)s)")
    reproduce.add_argument("--n-jobs", type=int, default=None,
                           help="cells trained in parallel by joblib; run under "
                                "joblib.parallel_config(backend='dask') for a dask cluster "
                                "(default: 1)")
    reproduce.add_argument("--out", type=Path, default=None,
                           help="folder for nokland2016.csv, nokland2016.json (every cell, "
                                "written as cells finish) and loss_curves.png "
                                "(default: none written)")
    reproduce.add_argument("--no-plots", action="store_true", help="do not write the plot")
    reproduce.add_argument("--quiet", action="store_true",
                           help="no progress per cell, only the table")


# -- data ----------------------------------------------------------------------


def _load(data, seed):
    """``(X_train, X_test, y_train, y_test), description`` for ``--data``."""
    from .datasets import fetch_mnist, load_fashion_mnist, load_idx_folder

    if data == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X / 16).astype(np.float32)
        split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        return split, "scikit-learn digits (8x8), 75/25 stratified split"
    with _bench.data_errors():
        if data == "fashion-mnist":
            return _bench.train_test(load_fashion_mnist, return_X_y=True), "Fashion-MNIST"
        if data == "mnist":
            return _bench.train_test(fetch_mnist, return_X_y=True), "MNIST"
        return _bench.train_test(load_idx_folder, data), f"IDX files in {data}"


# -- learners ------------------------------------------------------------------


def _make_learner(key, args, verbose, validation, track):
    """A fresh estimator for learner ``key`` with the shared settings of ``args``.

    With ``validation``, 10% of the training set is held out for a
    validation score per epoch (and the best epoch's weights are kept);
    skdfa networks measure their alignment every ``track`` updates.
    """
    from sklearn.neural_network import MLPClassifier

    from ._mlp import DFAClassifier

    # Every learner runs all epochs: no stopping on a plateau.
    common = dict(
        hidden_layer_sizes=args.hidden,
        activation=args.activation,
        solver="adam",
        learning_rate_init=args.lr,
        alpha=1e-4,
        batch_size=args.batch_size,
        max_iter=args.epochs,
        early_stopping=validation,
        validation_fraction=VALIDATION_FRACTION,
        n_iter_no_change=args.epochs,
        tol=0.0,
        random_state=args.seed,
    )
    if key == "mlp":
        return MLPClassifier(verbose=verbose, **common)
    common["dropout"] = args.dropout
    if key == "rd":
        from ._rd import RDClassifier

        # A dense output layer: an all-RD net is too small to compete here.
        return RDClassifier(
            rule="dfa", output_layer="dense", track_alignment=track, verbose=verbose, **common
        )
    if key == "stacking":
        from ._stacking import StackingDFA

        member = DFAClassifier(rule="dfa", track_alignment=track, **common)
        return StackingDFA(
            member, n_estimators=STACKING_SIZE, random_state=args.seed, verbose=int(verbose)
        )
    return DFAClassifier(rule=key, track_alignment=track, verbose=verbose, **common)


def _n_params(est):
    """Trainable parameters of a fitted estimator (learners and head for stacking)."""
    if hasattr(est, "n_params_"):
        return int(est.n_params_)
    if hasattr(est, "coefs_"):
        return int(sum(a.size for a in est.coefs_) + sum(b.size for b in est.intercepts_))
    if hasattr(est, "estimators_"):
        head = getattr(est, "final_estimator_", None)
        members = sum(_n_params(e) for e in est.estimators_)
        return members + (_n_params(head) if head is not None else 0)
    return 0


def _final_angle(est):
    """Mean alignment angle over the hidden layers and the last epoch's
    records (averaged over the learners of a stacking); NaN if not tracked."""
    if hasattr(est, "estimators_"):
        angles = [_final_angle(e) for e in est.estimators_]
        angles = [a for a in angles if np.isfinite(a)]
        return float(np.mean(angles)) if angles else np.nan
    alignment = getattr(est, "alignment_", None)
    if alignment is None or alignment.size == 0:
        return np.nan
    per_epoch = max(1, len(alignment) // max(1, est.n_iter_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN records
        return float(np.nanmean(alignment[-per_epoch:]))


def _compare(data, args, out):
    X_train, X_test, y_train, y_test = data
    if args.n_train is not None:
        X_train, y_train = X_train[: args.n_train], y_train[: args.n_train]
    # A stratified validation split needs a sample of every class.
    validation = VALIDATION_FRACTION * len(X_train) >= len(np.unique(y_train))
    if not validation:
        out("too few training samples for a validation split: no validation scores")
    # About 5 alignment records per epoch, at most one per 10 updates (each
    # costs a back-propagation pass).
    n_batches = len(X_train) * (1 - VALIDATION_FRACTION * validation) / args.batch_size
    track = int(np.clip(n_batches // 5, 1, 10))
    rows, fitted = [], {}
    for i, key in enumerate(args.rules, 1):
        name = LEARNERS[key]
        if not args.quiet:
            out(f"[{i}/{len(args.rules)}] {name}: {args.epochs} epochs")
        est = _make_learner(key, args, not args.quiet, validation, track)
        start = time.perf_counter()
        # Epochs are fixed on purpose: "max_iter reached" is expected. A
        # diverging fit raises its own clear error: numpy's overflow warnings
        # before it would only bury it.
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                est.fit(X_train, y_train)
            except ValueError as exc:  # e.g. divergence, with its advice
                raise _bench.CommandError(f"{name}: {exc}") from None
        seconds = time.perf_counter() - start
        rows.append((name, est.score(X_test, y_test), seconds, _n_params(est), _final_angle(est)))
        fitted[name] = est
    out("")
    header = f"{'learner':<26} {'test acc':>8} {'fit (s)':>8} {'params':>9} {'angle (deg)':>11}"
    out(header)
    out("-" * len(header))
    for name, accuracy, seconds, n_params, angle in rows:
        angle = "-" if np.isnan(angle) else f"{angle:.1f}"
        out(f"{name:<26} {accuracy:>8.4f} {seconds:>8.2f} {n_params:>9} {angle:>11}")
    out("angle: mean over hidden layers and the last epoch of the angle between the "
        "rule's hidden deltas (error signals) and back-propagation's (0 = BP, 90 = unrelated).")
    out("fit (s): the whole fit, with its per-epoch validation score (and alignment "
        "records for skdfa); `skdfa bench` times training alone.")
    return fitted


def _write_plots(fitted, folder, out):
    """Write the history and alignment plots; one line and no plot without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as plt
    except ImportError:
        out("plots skipped: matplotlib is not installed (get them with `pip install skdfa[plot]`)")
        return []
    from .plotting import AlignmentDisplay, TrainingHistoryDisplay

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    history = {n: e for n, e in fitted.items() if getattr(e, "loss_curve_", None)}
    # BP's angle to itself is zero: it would only flatten the others' scale.
    aligned = {
        n: e for n, e in fitted.items()
        if getattr(e, "alignment_", np.empty(0)).size and getattr(e, "rule", None) != "bp"
    }
    for filename, display, estimators in [
        ("training_history.png", TrainingHistoryDisplay, history),
        ("alignment.png", AlignmentDisplay, aligned),
    ]:
        if not estimators:
            continue
        disp = display.from_estimator(list(estimators.values()), names=list(estimators))
        disp.figure_.set_size_inches(8, 5)
        disp.figure_.tight_layout()
        path = folder / filename
        disp.figure_.savefig(path, dpi=100)
        plt.close(disp.figure_)
        written.append(path)
    out(f"plots: {', '.join(str(p) for p in written)}")
    return written


def _check_output_folder(folder):
    """Create the plots' folder and check that it takes files, before any
    training: a bad ``--out`` is one line, not a traceback after the fits."""
    if folder.exists() and not folder.is_dir():
        raise _bench.CommandError(f"--out {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise _bench.CommandError(
            f"--out {folder} is not a writable folder: {exc.strerror}"
        ) from None


def _run_comparison(args, data, out):
    if not args.no_plots:
        _check_output_folder(args.out)
    arrays, description = _load(data, args.seed)
    n_train = len(arrays[0]) if args.n_train is None else min(args.n_train, len(arrays[0]))
    out(f"{description}: {n_train} train / {len(arrays[1])} test samples, "
        f"{arrays[0].shape[1]} features; hidden {args.hidden}, {args.activation}, "
        f"adam lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}"
        + (f", dropout {args.dropout} (skdfa only)" if args.dropout else ""))
    threads = contextlib.nullcontext()
    if args.threads is not None:
        threads = threadpool_limits(limits=args.threads, user_api="blas")
    with threads:
        fitted = _compare(arrays, args, out)
    if not args.no_plots:
        _write_plots(fitted, args.out, out)
    return 0


def main(argv=None):
    """Run the ``skdfa`` command.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 for missing or unreadable data or a failed fit, 2 for
        a usage error, 130 when interrupted.

    Examples
    --------
    >>> from skdfa._cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    skdfa ...
    0
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "bench":
            return _bench.run(args)
        if args.command == "reproduce":
            from . import _reproduce

            if args.out is not None:
                _check_output_folder(args.out)
            with _bench.data_errors():
                _reproduce.run(args, print)
            return 0
        data = "digits" if args.command == "demo" else args.data
        return _run_comparison(args, data, print)
    except SystemExit as exc:  # --help and --version
        return exc.code or 0
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except _bench.CommandError as exc:
        print(f"skdfa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skdfa: interrupted", file=sys.stderr)
        return 130
