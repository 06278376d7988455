"""The ``skdfa`` command: how does DFA compare with back-propagation?

- ``skdfa demo`` trains DFA, FA, BP, scikit-learn's MLPClassifier, an
  RDClassifier and a StackingDFA on the digits, prints a table (test
  accuracy, fit seconds, parameters, mean final alignment angle) and writes
  plots; ``skdfa compare`` does the same on Fashion-MNIST, MNIST or any
  folder of IDX files (``_compare.py``).
- ``skdfa bench`` is the speed benchmark (``_bench.py``).
- ``skdfa reproduce nokland2016`` trains the DFA paper's MNIST table
  (``_reproduce.py``).

``_common.py`` holds what they share (data, learners, quiet fitting,
devices); ``_progress.py`` the progress of long fits.

Bad input (unknown option, missing or corrupt data, a diverged fit) prints
one line and exits non-zero: 2 for usage errors, 1 for the others.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .. import __version__
from . import _bench, _biotorch, _common, _compare, _reproduce
from ._common import CommandError


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, raised for :func:`main` to report."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def build_parser():
    """The ``skdfa`` argument parser, with one subparser per command."""
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
                    "RDClassifier and a StackingDFA on scikit-learn's digits; print one "
                    "line per learner, a table, and write plots.",
    )
    # The digits' matrices are tiny: one BLAS thread is faster than several.
    _compare.add_arguments(demo, hidden=(128, 128), epochs=40,
                           learners=_compare.DEMO_LEARNERS, lr=1e-2, threads=1)

    compare = commands.add_parser(
        "compare", help="the demo's table on real data (Fashion-MNIST, MNIST or IDX files)",
        description="The demo's comparison on digits, Fashion-MNIST, MNIST or a folder of "
                    "MNIST-style IDX files, with the shipped train/test split.",
    )
    compare.add_argument("--data", default="fashion-mnist",
                         help="digits, fashion-mnist, mnist (downloaded once by "
                              "skdfa.datasets.fetch_mnist), or a folder of IDX files "
                              "({train,t10k}-{images,labels}-idx*-ubyte[.gz]) "
                              "(default: %(default)s)")
    _compare.add_arguments(compare, hidden=(800,), epochs=10,
                           learners=_compare.COMPARE_LEARNERS, lr=1e-3, threads=None)

    bench = commands.add_parser(
        "bench", help="speed benchmark: skdfa vs MLPClassifier on Fashion-MNIST",
        description="Seconds per epoch, GFLOP/s against this machine's matmul rate, "
                    "peak memory and test accuracy of skdfa and MLPClassifier at equal "
                    "settings.",
    )
    _bench.add_arguments(bench)

    reproduce = commands.add_parser(
        "reproduce", help="a paper's table: nokland2016 (the DFA paper's MNIST table), "
                          "biotorch-lenet (biotorch's LeNet table)",
        description="Train the MNIST table of Nøkland (2016), 'Direct Feedback Alignment "
                    "Provides Learning in Deep Neural Networks' (rows: networks; columns: "
                    "BP, FA, DFA) with the recipe of the author's code, and print it next "
                    "to the paper's numbers. The full table is long: 21 cells of 300 epochs; "
                    "with --out, a rerun skips finished cells and continues checkpoints. "
                    "biotorch-lenet trains biotorch's LeNet table (Sanfiz and Akrout, "
                    "2021; columns BP, FA, uSF, brSF, frSF, DFA) on --data mnist or "
                    "fashion-mnist with biotorch's recipe, and its CIFAR LeNet on --data "
                    "cifar10 with its CIFAR-10 recipe.",
    )
    _add_reproduce_arguments(reproduce)
    return parser


def _add_reproduce_arguments(reproduce):
    from .._direct_rules import CONV_FEEDBACK_FORMS

    reproduce.add_argument("paper", choices=["nokland2016", "biotorch-lenet"],
                           help="the paper")
    reproduce.add_argument("--data", default="mnist",
                           help="mnist (downloaded once by skdfa.datasets.fetch_mnist), "
                                "fashion-mnist, digits, or a folder of IDX files; MNIST and "
                                "Fashion-MNIST files are recognised by their checksums; "
                                "biotorch-lenet also takes cifar10 "
                                "(skdfa.datasets.fetch_cifar10) or the path of "
                                "cifar-10-python.tar.gz (default: %(default)s)")
    reproduce.add_argument(
        "--rows", type=lambda t: _common.parse_names(t, _reproduce.ROWS, "row"),
        default=tuple(_reproduce.ROWS), metavar="ROWS",
        help=f"comma-separated, from {','.join(_reproduce.ROWS)} (default: all)",
    )
    known = _reproduce.RULES + tuple(r for r in _biotorch.RULES if r not in _reproduce.RULES)
    reproduce.add_argument("--rules", default=None, metavar="RULES",
                           type=lambda t: _common.parse_rules(t, known),
                           help="comma-separated, from bp,fa,dfa (nokland2016) or "
                                "bp,fa,usf,brsf,frsf,dfa (biotorch-lenet), or "
                                "package.module:NAME for a skdfa.rules.LearningRule "
                                "subclass or instance of your own (default: the paper's)")
    reproduce.add_argument("--epochs", type=_common.parse_positive_int, default=None,
                           help="training epochs of every cell (default: the paper's, 300 "
                                "for nokland2016, 100 for biotorch-lenet)")
    reproduce.add_argument("--n-train", type=_common.parse_positive_int, default=None,
                           help="use the first N training samples (default: all)")
    reproduce.add_argument("--seed", type=int, default=0,
                           help="random seed of every cell (default: %(default)s)")
    reproduce.add_argument("--device", type=_common.parse_device, default="numpy",
                           help="numpy arrays, or torch tensors on one of "
                                f"{','.join(_common.DEVICES[1:])} (needs torch) "
                                "(default: %(default)s)")
    reproduce.add_argument("--n-jobs", type=int, default=None,
                           help="cells trained in parallel by joblib; run under "
                                "joblib.parallel_config(backend='dask') for a dask cluster "
                                "(default: 1)")
    reproduce.add_argument("--out", type=Path, default=None,
                           help="folder for the results (nokland2016.csv, nokland2016.json "
                                "and loss_curves.png; biotorch_lenet.json), written as cells "
                                "finish, and the running cells' checkpoints; a rerun with the "
                                "same folder resumes (default: none written)")
    reproduce.add_argument("--checkpoint-every", type=_common.parse_positive_int,
                           default=_reproduce.CHECKPOINT_EVERY, metavar="N",
                           help="with --out, save a running cell every N epochs: Ctrl-C "
                                "loses at most N epochs (default: %(default)s)")
    reproduce.add_argument("--learning-rate", type=_common.parse_positive_float, default=None,
                           metavar="LR",
                           help="biotorch-lenet: initial learning rate of every column "
                                "(default: the command's rate for each rule)")
    reproduce.add_argument("--feedback-scale", type=_common.parse_feedback_scale, default=None,
                           metavar="SCALE",
                           help="biotorch-lenet: feedback_scale of every column, auto, glorot "
                                "or a positive number (default: the command's for each rule)")
    reproduce.add_argument("--conv-feedback", choices=CONV_FEEDBACK_FORMS, default=None,
                           help="biotorch-lenet: the form of the direct rules (dfa, drtp, "
                                "sdfa) below a convolution: map, pooled (Nøkland's code) or "
                                "kernel (biotorch's; the default)")
    reproduce.add_argument("--validation", choices=_biotorch.VALIDATION_SETS, default=None,
                           help="biotorch-lenet: choose the best epoch on 10000 training "
                                "images held out (holdout, the default) or on the test set "
                                "after training on all the training images (test, as "
                                "biotorch's code does)")
    reproduce.add_argument("--no-plots", action="store_true", help="do not write the plot")
    reproduce.add_argument("--quiet", action="store_true",
                           help="no progress (epochs, loss, time left), only the table")


def _torch_devices(args):
    devices = getattr(args, "devices", None) or (getattr(args, "device", "numpy"),)
    return [d for d in devices if d != "numpy"]


def _ensure_array_api(args, argv):
    """scikit-learn's array API dispatch (torch devices) needs SCIPY_ARRAY_API=1
    before scipy is imported, which ``import skdfa`` already did. Run from a
    shell (``argv`` None), the command starts itself again with it set; called
    from Python, it says how to set it. Returns the exit status of the rerun,
    or None to go on."""
    if not _torch_devices(args) or os.environ.get("SCIPY_ARRAY_API") == "1":
        return None
    if argv is not None:
        raise CommandError(
            f"--device {','.join(_torch_devices(args))} needs the environment variable "
            "SCIPY_ARRAY_API=1 set before scipy is imported: set it at the top of the "
            "script (os.environ['SCIPY_ARRAY_API'] = '1'), or run "
            "`SCIPY_ARRAY_API=1 python -m skdfa ...`"
        )
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    command = [sys.executable, "-m", "skdfa", *sys.argv[1:]]
    sys.stdout.flush()
    if os.name == "posix":
        os.execve(sys.executable, command, env)
    return subprocess.call(command, env=env)


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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status = _ensure_array_api(args, argv)
        if status is not None:
            return status
        if args.command == "bench":
            problem = _bench.usage_problem(args)
            if problem:
                parser.error(problem)
            return _bench.run(args)
        if args.command == "reproduce":
            if args.out is not None:
                _common.check_output_folder(args.out)
            paper = _biotorch if args.paper == "biotorch-lenet" else _reproduce
            if paper is _reproduce and (args.learning_rate or args.feedback_scale
                                        or args.validation or args.conv_feedback):
                parser.error("--learning-rate, --feedback-scale, --conv-feedback and "
                             "--validation are biotorch-lenet's: nokland2016 keeps the "
                             "paper's recipe")
            args.rules = args.rules or paper.RULES
            args.epochs = args.epochs or (
                _biotorch.paper_epochs(args.data) if paper is _biotorch else paper.PAPER_EPOCHS
            )
            with _common.data_errors():
                paper.run(args, print)
            return 0
        data = "digits" if args.command == "demo" else args.data
        return _compare.run(args, data, print)
    except SystemExit as exc:  # --help and --version
        return exc.code or 0
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"skdfa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skdfa: interrupted", file=sys.stderr)
        return 130
