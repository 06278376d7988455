"""``skdfa demo`` and ``skdfa compare``: DFA, other rules and MLPClassifier
side by side.

Both train the learners of ``--rules`` at equal settings, print one line per
learner as it finishes, then a table (test accuracy, fit seconds,
parameters, mean final alignment angle), and write the training-history and
alignment plots. ``demo`` is ``compare`` on scikit-learn's digits with
smaller defaults.
"""

import contextlib
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from . import _common
from ._common import CommandError

LEARNER_LABELS = {
    "mlp": "MLPClassifier (sklearn)",
    "rd": "RDClassifier (dfa)",  # RD hidden layers, dense output layer
    "stacking": "StackingDFA",
}
"""The learners of ``--rules`` that are not learning rules, and their labels."""

DEMO_LEARNERS = ("dfa", "fa", "bp", "mlp", "rd", "stacking")
COMPARE_LEARNERS = ("dfa", "bp", "mlp")  # with one hidden layer FA is DFA
STACKING_SIZE = 5
VALIDATION_FRACTION = 0.1


def learner_keys():
    """Every key ``--rules`` takes: the learning rules, then the other learners."""
    return (*_common.rule_names(), *LEARNER_LABELS)


def label(key):
    """The learner's name in the table and the plots."""
    if key in LEARNER_LABELS:
        return LEARNER_LABELS[key]
    rule = _common.get_rule(key)
    if ":" in key and repr(rule) != f"{type(rule).__name__}()":
        return repr(rule)  # a user's rule instance, told apart by its parameters
    return rule.label


def parse_learners(text):
    return _common.parse_rules(text, learner_keys(), "learner")


def add_arguments(parser, *, hidden, epochs, learners, lr, threads):
    """The options of ``demo`` and ``compare`` (``--data`` aside)."""
    parser.add_argument("--hidden", type=_common.parse_widths, default=hidden,
                        metavar="WIDTHS",
                        help="hidden widths, comma-separated, e.g. 256 or 500,500 "
                             f"(default: {','.join(map(str, hidden))})")
    parser.add_argument("--activation", default="tanh",
                        choices=["tanh", "relu", "logistic", "identity"],
                        help="hidden activation (default: %(default)s)")
    parser.add_argument("--epochs", type=_common.parse_positive_int, default=epochs,
                        help="training epochs of every learner (default: %(default)s)")
    parser.add_argument("--rules", type=parse_learners, default=learners, metavar="LEARNERS",
                        help=f"comma-separated, from {','.join(learner_keys())} (mlp is "
                             "sklearn's MLPClassifier), or package.module:NAME for a "
                             "skdfa.rules.LearningRule subclass or instance of your own "
                             f"(default: {','.join(learners)})")
    parser.add_argument("--lr", type=float, default=lr,
                        help="adam's learning rate (default: %(default)s)")
    parser.add_argument("--dropout", type=_common.parse_dropout, default=0.0, metavar="RATES",
                        help="dropout of skdfa's networks: HIDDEN or INPUT,HIDDEN, e.g. "
                             "0.1,0.3 (MLPClassifier has none; default: %(default)s)")
    parser.add_argument("--batch-size", type=_common.parse_positive_int, default=200,
                        help="mini-batch size (default: %(default)s)")
    parser.add_argument("--n-train", type=_common.parse_positive_int, default=None,
                        help="use the first N training samples (default: all)")
    parser.add_argument("--device", type=_common.parse_device, default="numpy",
                        help="where skdfa's networks train: numpy arrays, or torch tensors "
                             f"on one of {','.join(_common.DEVICES[1:])} (needs torch; "
                             "MLPClassifier stays on numpy) (default: %(default)s)")
    parser.add_argument("--threads", type=_common.parse_positive_int, default=threads,
                        help="BLAS threads (default: "
                             f"{threads or 'all; BLAS decides'})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("skdfa-output"),
                        help="folder of the plots (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="do not write plots")
    parser.add_argument("--verbose", action="store_true",
                        help="also print every learner's per-epoch table")
    parser.add_argument("--quiet", action="store_true", help="no progress, only the table")


def _make_learner(key, args, verbose, validation, track):
    """A fresh estimator for learner ``key`` with the shared settings of ``args``.

    With ``validation``, 10% of the training set is held out for a
    validation score per epoch (and the best epoch's weights are kept);
    skdfa networks measure their alignment every ``track`` updates.
    """
    return _common.make_learner(
        key, hidden=args.hidden, epochs=args.epochs, seed=args.seed,
        activation=args.activation, learning_rate_init=args.lr,
        batch_size=args.batch_size, dropout=args.dropout, validation=validation,
        validation_fraction=VALIDATION_FRACTION, track=track, verbose=verbose,
        stacking_size=STACKING_SIZE,
    )


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
    if alignment is None or alignment.shape[0] == 0:
        return np.nan
    alignment = np.asarray(_to_numpy(alignment))
    per_epoch = max(1, len(alignment) // max(1, est.n_iter_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN records
        return float(np.nanmean(alignment[-per_epoch:]))


def _to_numpy(array):
    from sklearn.utils._array_api import _convert_to_numpy, get_namespace

    return _convert_to_numpy(array, get_namespace(array)[0])


def train_learners(data, args, out):
    """Fit every learner of ``args.rules`` on ``data``; print the table;
    return ``{label: fitted estimator}``."""
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
    on_device = _common.to_device((X_train, X_test, y_train, y_test), args.device)
    rows, fitted = [], {}
    for i, key in enumerate(args.rules, 1):
        name = label(key)
        est = _make_learner(key, args, args.verbose, validation, track)
        # scikit-learn's MLPClassifier has no array API support.
        device = "numpy" if key == "mlp" else args.device
        X_fit, X_eval, y_fit, y_eval = (
            on_device if device != "numpy" else (X_train, X_test, y_train, y_test)
        )
        prefix = (f"[{i}/{len(args.rules)}] {name}: {args.epochs} epochs"
                  + ("" if device == "numpy" else f" on torch {device}"))
        if not args.quiet:
            # One line per learner, completed when it is done (the
            # per-epoch table of --verbose comes between).
            out(prefix, end="\n" if args.verbose else "", flush=True)
        start = time.perf_counter()
        try:
            with _common.on_device(device):
                _common.fit_quietly(est, X_fit, y_fit, name)
                _common.synchronize(device)
                seconds = time.perf_counter() - start
                accuracy = float(est.score(X_eval, y_eval))
        except CommandError:
            if not (args.quiet or args.verbose):
                out("")
            raise
        if not args.quiet:
            out(f"{prefix if args.verbose else ''} in {seconds:.2f} s, "
                f"test accuracy {accuracy:.4f}")
        rows.append((name, accuracy, seconds, _n_params(est), _final_angle(est)))
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


def write_plots(fitted, folder, out):
    """Write the history and alignment plots; one line and no plot without matplotlib."""
    try:
        import matplotlib  # noqa: F401

        from ..plotting import AlignmentDisplay, TrainingHistoryDisplay
    except ImportError:
        out("plots skipped: matplotlib is not installed (get them with `pip install matplotlib`)")
        return []
    from sklearn.utils._array_api import move_estimator_to

    folder.mkdir(parents=True, exist_ok=True)
    # The displays read numpy arrays: models trained on torch move back first.
    fitted = {n: _to_numpy_model(e, move_estimator_to) for n, e in fitted.items()}
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
        figure = _common.new_figure(figsize=(8, 5))
        display.from_estimator(list(estimators.values()), names=list(estimators),
                               ax=figure.subplots())
        figure.tight_layout()
        path = folder / filename
        figure.savefig(path, dpi=100)
        written.append(path)
    out(f"plots: {', '.join(str(p) for p in written)}")
    return written


def _to_numpy_model(est, move_estimator_to):
    if isinstance(getattr(est, "alignment_", np.empty(0)), np.ndarray):
        return est
    with _common.on_device("cpu"):
        return move_estimator_to(est, np, "cpu")


def run(args, data, out):
    """``demo`` (``data="digits"``) or ``compare``: returns the exit status."""
    if not args.no_plots:
        _common.check_output_folder(args.out)
    _common.check_device(args.device)
    loaded = _common.load_data(data, seed=args.seed)
    arrays = loaded.arrays
    n_train = len(arrays[0]) if args.n_train is None else min(args.n_train, len(arrays[0]))
    out(f"{loaded.description}: {n_train} train / {len(arrays[1])} test samples, "
        f"{arrays[0].shape[1]} features; hidden {args.hidden}, {args.activation}, "
        f"adam lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}"
        + (f", dropout {args.dropout} (skdfa only)" if args.dropout else "")
        + ("" if args.device == "numpy" else f", skdfa on torch {args.device}"))
    threads = contextlib.nullcontext()
    if args.threads is not None:
        threads = threadpool_limits(limits=args.threads, user_api="blas")
    with threads:
        fitted = train_learners(arrays, args, out)
    if not args.no_plots:
        write_plots(fitted, args.out, out)
    return 0
