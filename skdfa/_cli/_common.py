"""What the ``skdfa`` subcommands share: argument types, data, learners,
quiet fitting, devices, figures and the learning rules' display names.

``demo`` and ``compare`` (``_compare.py``), ``bench`` (``_bench.py``) and
``reproduce`` (``_reproduce.py``) load their data, build their learners and
fit them through the functions here. ``--rules`` takes built-in rules by name
and a user's rule as ``package.module:NAME`` (:func:`resolve_rule`);
what the command shows of a rule (its label, its colour, the multiply-adds
of its error signal) is the rule object's own (:func:`get_rule`).
"""

import argparse
import contextlib
import gzip
import hashlib
import signal
import tempfile
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning

DEVICES = ("numpy", "cpu", "cuda", "mps")
"""``--device`` choices: numpy arrays, or torch tensors on that device."""


class CommandError(Exception):
    """An error the command line reports in one line: missing or unreadable
    data, or a learner that failed to fit."""


@contextlib.contextmanager
def data_errors():
    """Turn the loaders' file and format errors into :class:`CommandError`."""
    try:
        yield
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None


# -- argument types ------------------------------------------------------------


def parse_widths(text):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive widths such as 800 or 1000,1000,1000, got {text!r}"
        )
    return sizes


def parse_names(text, choices, noun):
    """Comma-separated names, each one of ``choices`` (an argparse type)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(set(names) - set(choices))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {noun}(s) {', '.join(unknown) or repr(text)}; choose from "
            f"{', '.join(choices)}"
        )
    return names


def parse_positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def parse_feedback_scale(text):
    """``auto``, ``glorot`` or a positive number, as ``feedback_scale=`` takes."""
    if text in ("auto", "glorot"):
        return text
    try:
        return parse_positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected auto, glorot or a positive number, got {text!r}"
        ) from None


def parse_dropout(text):
    try:
        rates = tuple(float(r) for r in text.split(","))
    except ValueError:
        rates = ()
    if len(rates) not in (1, 2) or not all(0 <= r < 1 for r in rates):
        raise argparse.ArgumentTypeError(
            f"invalid dropout {text!r}: one rate or INPUT,HIDDEN, each in [0, 1)"
        )
    return rates[0] if len(rates) == 1 else rates


def parse_device(text):
    if "," in text:
        raise argparse.ArgumentTypeError(f"expected one device, got {text!r}")
    return parse_names(text, DEVICES, "device")[0]


def parse_devices(text):
    return parse_names(text, DEVICES, "device")


# -- learning rules --------------------------------------------------------------


def rule_names():
    """The names of the built-in learning rules, in the library's order."""
    from ..rules import RULES

    return tuple(RULES)


def resolve_rule(spec):
    """What ``rule=`` gets for a ``--rules`` item: a built-in rule's name as
    it is, or for ``package.module:NAME`` the rule that ``NAME`` is in that
    module: an instance of a :class:`~skdfa.rules.LearningRule` subclass
    (``SCALED = ScaledDFA(scale=3)``, with its constructor's arguments), or
    such a class, made with no arguments.

    Examples
    --------
    >>> from skdfa._cli._common import resolve_rule
    >>> resolve_rule("dfa"), resolve_rule("skdfa.rules:SignDirectFeedbackAlignment")
    ('dfa', SignDirectFeedbackAlignment())
    >>> resolve_rule("skdfa.rules:RULES")
    Traceback (most recent call last):
    ...
    ValueError: skdfa.rules:RULES is neither a skdfa.rules.LearningRule subclass nor an instance of one: it is a dict.
    """
    if not isinstance(spec, str) or ":" not in spec:
        return spec  # a name, or already a rule object
    import importlib

    from ..rules import LearningRule

    module_name, _, name = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import the learning rule {spec!r}: {exc}") from None
    if isinstance(found, LearningRule):
        return found
    if isinstance(found, type) and issubclass(found, LearningRule):
        return found()
    raise ValueError(
        f"{spec} is neither a skdfa.rules.LearningRule subclass nor an instance of one: "
        f"it is a {type(found).__name__}."
    )


def get_rule(spec):
    """The :class:`~skdfa.rules.LearningRule` of a ``--rules`` item: its
    ``label``, ``color`` and ``error_signal_macs`` are what the command
    shows of it."""
    from ..rules import get_rule

    return get_rule(resolve_rule(spec))


def parse_rules(text, choices, noun="rule"):
    """Comma-separated ``--rules`` items (an argparse type): names from
    ``choices``, or ``package.module:NAME`` for a user's learning rule
    (imported here, so that a wrong one is a usage error)."""
    items = tuple(n.strip() for n in text.split(",") if n.strip())
    named = [n for n in items if ":" not in n]
    if named or not items:
        parse_names(",".join(named) or text, choices, noun)  # unknown names raise
    for item in items:
        if ":" in item:
            try:
                resolve_rule(item)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
    return items


# -- data ------------------------------------------------------------------------


def synthetic_data(n_train=60000, n_test=10000, n_features=784, n_classes=10, seed=0):
    """A Fashion-MNIST-shaped stand-in: noisy copies of random class prototypes.

    Parameters
    ----------
    n_train, n_test : int, default=60000, 10000
        Samples of each split.
    n_features, n_classes : int, default=784, 10
        Shape of the problem.
    seed : int, default=0
        Seeds the prototypes, the labels and the noise.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        float32 features in [0, 1] and int64 labels.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.random((n_classes, n_features), dtype=np.float32)
    y = rng.integers(n_classes, size=n_train + n_test)
    X = rng.standard_normal((n_train + n_test, n_features), dtype=np.float32)
    X *= 0.5
    X += prototypes[y]
    np.clip(X, 0, 1, out=X)
    return X[:n_train], X[n_train:], y[:n_train], y[n_train:]


def train_test(loader, *args, **kwargs):
    """``X_train, X_test, y_train, y_test`` from a loader with a ``subset`` parameter."""
    X_train, y_train = loader(*args, subset="train", **kwargs)
    X_test, y_test = loader(*args, subset="test", **kwargs)
    return X_train, X_test, y_train, y_test


def identify_idx_folder(folder):
    """``"MNIST"`` or ``"Fashion-MNIST"`` when ``folder`` holds that data set's
    four IDX files, else None.

    A file counts when it is the published ``.gz`` file (its SHA-256 is the
    published one) or when its IDX content, decompressed or not, is the
    published content (its SHA-256 is in ``MNIST_IDX_SHA256`` or
    ``FASHION_MNIST_IDX_SHA256``): recompressed copies, such as Debian's
    ``dataset-fashion-mnist``, are recognised too.

    Examples
    --------
    >>> from skdfa._cli._common import identify_idx_folder
    >>> identify_idx_folder("/nonexistent") is None
    True
    """
    from ..datasets import _fetch

    folder = Path(folder)
    for name, published, contents in [
        ("MNIST", _fetch.MNIST_SHA256, _fetch.MNIST_IDX_SHA256),
        ("Fashion-MNIST", _fetch.FASHION_MNIST_SHA256, _fetch.FASHION_MNIST_IDX_SHA256),
    ]:
        if all(_holds_idx_file(folder, file, published.get(f"{file}.gz"), content)
               for file, content in contents.items()):
            return name
    return None


def _holds_idx_file(folder, name, gz_sha256, content_sha256):
    """Whether ``folder`` holds IDX file ``name`` as ``name.gz`` whose SHA-256
    is ``gz_sha256``, or as ``name.gz`` or ``name`` whose IDX content has the
    SHA-256 ``content_sha256``."""
    gzipped, plain = folder / f"{name}.gz", folder / name
    if gzipped.is_file():
        if _sha256(gzipped) == gz_sha256:
            return True
        try:
            return _sha256(gzipped, decompress=True) == content_sha256
        except (OSError, EOFError, zlib.error):  # not gzip data, or corrupt
            return False
    return plain.is_file() and _sha256(plain) == content_sha256


def _sha256(path, decompress=False):
    digest = hashlib.sha256()
    with (gzip.open if decompress else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Data:
    """Loaded data: the four arrays, a description for the header, and
    ``name``, the data set when it is a known one (``"MNIST"``,
    ``"Fashion-MNIST"``, ``"digits"``), else None."""

    arrays: tuple
    description: str
    name: str = None


def load_data(data, *, seed=0):
    """:class:`Data` for ``--data``.

    ``"digits"`` (scikit-learn's, split 75/25 with ``seed``),
    ``"fashion-mnist"`` (:func:`~skdfa.datasets.load_fashion_mnist`),
    ``"mnist"`` (:func:`~skdfa.datasets.fetch_mnist`), ``"synthetic"``
    (:func:`synthetic_data`) or a folder of IDX files, recognised as MNIST or
    Fashion-MNIST by its files' checksums. Missing or unreadable files raise
    :class:`CommandError`.
    """
    from ..datasets import fetch_mnist, load_fashion_mnist, load_idx_folder

    if data == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X / 16).astype(np.float32)
        split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        return Data(tuple(split), "scikit-learn digits (8x8), 75/25 stratified split", "digits")
    if data == "synthetic":
        return Data(synthetic_data(), "SYNTHETIC data (Fashion-MNIST shaped)")
    with data_errors():
        if data == "fashion-mnist":
            arrays = train_test(load_fashion_mnist, return_X_y=True)
            return Data(arrays, "Fashion-MNIST", "Fashion-MNIST")
        if data == "mnist":
            return Data(train_test(fetch_mnist, return_X_y=True), "MNIST", "MNIST")
        arrays = train_test(load_idx_folder, data)
    name = identify_idx_folder(data)
    description = f"IDX files in {data}" if name is None else f"{name} (IDX files in {data})"
    return Data(arrays, description, name)


# -- learners --------------------------------------------------------------------


def make_learner(key, *, hidden, epochs, seed, activation="tanh", solver="adam",
                 learning_rate_init=1e-3, batch_size=200, alpha=1e-4, dropout=0.0,
                 validation=False, validation_fraction=0.1, track=False, verbose=False,
                 stacking_size=5, conv=None, **settings):
    """A fresh estimator for learner ``key`` that trains all ``epochs`` epochs.

    Parameters
    ----------
    key : str
        A learning rule's name or ``package.module:NAME`` (a
        :class:`~skdfa.DFAClassifier` with that rule), ``"mlp"``
        (scikit-learn's MLPClassifier), ``"rd"`` (an RDClassifier trained by
        DFA, with a dense output layer) or ``"stacking"`` (a StackingDFA of
        ``stacking_size`` DFA networks).
    hidden, epochs, seed, activation, solver, learning_rate_init, batch_size, alpha
        The estimators' ``hidden_layer_sizes``, ``max_iter``,
        ``random_state``, and the parameters of the same names.
    dropout : float or tuple, default=0.0
        skdfa networks only (MLPClassifier has none).
    validation : bool, default=False
        Hold out ``validation_fraction`` of the training set for a
        validation score per epoch (``early_stopping``; the best epoch's
        weights are kept, no epoch is skipped).
    track : int, default=False
        skdfa networks record their alignment every ``track`` updates.
    verbose : bool, default=False
        The estimators' per-epoch table.
    conv : dict, default=None
        With a rule's ``key``, a :class:`~skdfa.ConvDFAClassifier` of these
        convolutional layers (``conv_layers``, ``pool_size``, ...) under the
        ``hidden`` dense ones, instead of a :class:`~skdfa.DFAClassifier`.
    **settings
        More parameters of the skdfa networks (``weight_init``, ``rho``, ...).

    Returns
    -------
    estimator : estimator
        Unfitted.
    """
    from sklearn.neural_network import MLPClassifier

    from .._mlp import DFAClassifier

    # No stopping on a plateau: every learner runs all its epochs.
    common = dict(
        hidden_layer_sizes=hidden,
        activation=activation,
        solver=solver,
        learning_rate_init=learning_rate_init,
        alpha=alpha,
        batch_size=batch_size,
        max_iter=epochs,
        early_stopping=validation,
        validation_fraction=validation_fraction,
        n_iter_no_change=epochs,
        tol=0.0,
        random_state=seed,
    )
    if key == "mlp":
        return MLPClassifier(verbose=verbose, **common)
    common.update(dropout=dropout, **settings)
    if key == "rd":
        from .._rd import RDClassifier

        # A dense output layer: an all-RD net is too small to compete here.
        return RDClassifier(
            rule="dfa", output_layer="dense", track_alignment=track, verbose=verbose, **common
        )
    if key == "stacking":
        from .._stacking import StackingDFA

        member = DFAClassifier(rule="dfa", track_alignment=track, **common)
        return StackingDFA(
            member, n_estimators=stacking_size, random_state=seed, verbose=int(verbose)
        )
    if conv is not None:
        from .._conv_estimator import ConvDFAClassifier

        return ConvDFAClassifier(rule=resolve_rule(key), track_alignment=track,
                                 verbose=verbose, **conv, **common)
    return DFAClassifier(rule=resolve_rule(key), track_alignment=track, verbose=verbose,
                         **common)


# -- devices ---------------------------------------------------------------------


def to_device(arrays, device):
    """The arrays as torch tensors on ``device`` (unchanged for ``"numpy"``)."""
    if device == "numpy":
        return tuple(arrays)
    import torch

    return tuple(torch.asarray(a, device=device) for a in arrays)


def on_device(device):
    """The context in which estimators fit and score data of ``device``:
    scikit-learn's array API dispatch, on for torch devices."""
    return config_context(array_api_dispatch=device != "numpy")


def synchronize(device):
    """Wait for the device's queued work (before reading a clock)."""
    if device in ("cuda", "mps"):
        import torch

        getattr(torch, device).synchronize()


def check_device(device):
    """Raise :class:`CommandError` unless torch has ``device`` here."""
    if device == "numpy":
        return
    try:
        import torch
    except ImportError:
        raise CommandError(
            f"--device {device} trains on torch tensors: install torch "
            "(pip install -e \".[torch]\" from a checkout)"
        ) from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}
    if not available[device]:
        raise CommandError(f"--device {device}: torch has no {device} device on this machine")


# -- fitting ---------------------------------------------------------------------


@contextlib.contextmanager
def quietly():
    """Fit with a fixed number of epochs: "max_iter reached" is expected, and
    numpy's overflow warnings before a diverging fit's own clear error would
    only bury it."""
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def fit_quietly(est, X, y, name):
    """``est.fit(X, y)`` :func:`quietly`; a failed fit (divergence, with its
    advice) becomes a :class:`CommandError` naming the learner."""
    with quietly():
        try:
            return est.fit(X, y)
        except ValueError as exc:
            raise CommandError(f"{name}: {exc}") from None


@contextlib.contextmanager
def _noting_interrupts():
    """Yield a callable that says whether Ctrl-C was pressed inside the block.

    The estimators catch the ``KeyboardInterrupt`` of a Ctrl-C themselves
    (they keep the last finished epoch and return): this handler notes it
    first. Outside the main thread, where no Ctrl-C arrives, it notes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    pressed = []

    def handler(signum, frame):
        pressed.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)


def fit_epochs(est, X, y, epochs, *, after_epoch=None, on_interrupt=None, epoch_inputs=None):
    """Fit a skdfa estimator one epoch at a time up to ``epochs`` epochs in all.

    Each epoch is a ``fit`` with ``warm_start=True, max_iter=1``, which
    continues the weights, the optimizer, the learning-rate schedule and the
    random streams: the model is the one a single ``fit`` of ``epochs``
    epochs gives, bit for bit, also when ``est`` was pickled and loaded
    between epochs (a checkpoint). The epochs already in ``est.loss_curve_``
    count: a checkpointed estimator continues where it stopped.

    Parameters
    ----------
    est : DFAClassifier or DFARegressor
        Unfitted, or fitted by this function before. Two settings under
        which a single fit differs are refused: ``early_stopping=True``
        (each epoch's fit would draw a new validation split and end on the
        best epoch's weights) and ``n_iter_no_change < epochs`` (a single
        fit may stop, or cut sgd's adaptive learning rate, on the ``tol``
        test, which an epoch's fit does not report).
    X, y : array-like
        The training data.
    epochs : int
        Epochs in all.
    after_epoch : callable, default=None
        Called as ``after_epoch(est)`` after each epoch.
    on_interrupt : callable, default=None
        Called as ``on_interrupt(est)`` when Ctrl-C stops an epoch; ``est``
        then holds the last finished epoch. ``KeyboardInterrupt`` follows.
    epoch_inputs : callable, default=None
        ``epoch_inputs(X, epoch)`` gives the inputs that epoch ``epoch``
        (counted from 0) trains on instead of ``X``, rows and labels
        unchanged: data augmentation. It must draw from ``epoch`` alone, so
        that a continued checkpoint trains as one run.

    Returns
    -------
    est : estimator
        With its original ``max_iter`` and ``warm_start``; ``n_iter_`` counts
        the last epoch's fit only (as after any warm start), ``loss_curve_``
        every epoch.
    """
    if est.early_stopping:
        raise ValueError(
            "fit_epochs needs early_stopping=False: each epoch's fit would draw a "
            "new validation split and keep the best epoch's weights."
        )
    if est.n_iter_no_change < epochs:
        raise ValueError(
            f"fit_epochs needs n_iter_no_change >= epochs ({epochs}), got "
            f"{est.n_iter_no_change}: a single fit could stop on the tol test."
        )
    params = est.get_params()
    max_iter, warm_start = params["max_iter"], params["warm_start"]
    est.set_params(max_iter=1, warm_start=True)
    try:
        with _noting_interrupts() as interrupted:
            while (done := len(getattr(est, "loss_curve_", ()))) < epochs:
                with quietly():
                    est.fit(X if epoch_inputs is None else epoch_inputs(X, done), y)
                if interrupted():
                    if on_interrupt is not None:
                        on_interrupt(est)
                    raise KeyboardInterrupt
                if len(est.loss_curve_) != done + 1:
                    raise RuntimeError(
                        f"{type(est).__name__}.fit with warm_start=True, max_iter=1 went "
                        f"from {done} to {len(est.loss_curve_)} epochs instead of one more."
                    )
                if after_epoch is not None:
                    after_epoch(est)
    finally:
        est.set_params(max_iter=max_iter, warm_start=warm_start)
    return est


# -- output ----------------------------------------------------------------------


def check_output_folder(folder):
    """Create ``folder`` and check that it takes files, before any training:
    a bad ``--out`` is one line, not a traceback after the fits."""
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise CommandError(f"--out {folder} is not a writable folder: {exc.strerror}") from None


def new_figure(**kwargs):
    """A matplotlib figure that no GUI backend owns: it is only saved to files,
    through matplotlib's non-interactive canvas, so no window opens and
    pyplot's global state is left alone. ImportError without matplotlib."""
    import matplotlib  # first: the ImportError of a missing matplotlib
    from matplotlib.figure import Figure

    return Figure(**kwargs)
