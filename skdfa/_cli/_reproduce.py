"""``skdfa reproduce nokland2016``: the MNIST table of the DFA paper.

Nøkland (2016), "Direct Feedback Alignment Provides Learning in Deep Neural
Networks" (NeurIPS), Table 1 compares back-propagation (BP), feedback
alignment (FA) and direct feedback alignment (DFA) on permutation-invariant
MNIST. This module trains every (row, rule) cell of that table with the
recipe of Nøkland's own code and prints its test errors next to the paper's.

The recipe, and where each choice comes from (``dfa-torch`` is
github.com/anokland/dfa-torch, the code the paper's README says reproduces
its experiments):

- optimizer RMSprop, learning rate 1e-4, batch size 64, 300 epochs, no weight
  decay, no momentum: ``dfa-torch`` ``Main.lua`` defaults (``-optimization
  rmsprop -LR 0.0001 -batchSize 64 -epoch 300 -weightDecay 0 -momentum 0``);
  its README's MNIST command also passes ``-LR 1e-4``.
- RMSprop decay 0.99 and epsilon 1e-8: the defaults of Torch's
  ``optim.rmsprop``, which ``Main.lua`` calls without setting them.
- loss: sigmoid outputs with binary cross-entropy on one-hot targets
  (``Main.lua``'s default ``-criterion bce``): ``output_activation="sigmoid"``.
- initial weights: DFA and FA networks with tanh or logistic units start
  from zero weights and biases (``Models/mlp.lua`` zeroes them); BP keeps a
  random start (Torch's ``nn.Linear`` draws uniform +-1/sqrt(fan_in); skdfa's
  nearest is Glorot uniform, used here).
- feedback: uniform in +-1/sqrt(width of the receiving layer)
  (``Models/ErrorFeedback.lua`` for DFA, the initial weight copy in
  ``Models/Linear.lua`` for FA, both with ``-rfb_mag 0``): skdfa's
  ``feedback_distribution="uniform", feedback_scale="auto"``.
- dropout row: 0.1 on the input, 0.5 on every hidden layer (``Models/mlp.lua``
  with ``-dropout 1``).
- pixels scaled to [0, 1] (``Main.lua``'s ``-normalization scale``); the
  shipped 60000/10000 split; the test error after the last epoch.

Not reproduced: the paper chose the learning rate decay and training time of
its dropout runs on a validation set (its own words, as quoted by
reproducibility summaries of the paper); the README's best MNIST command
adds adversarial training (``-eps 0.08``), which skdfa has not. The max-norm
constraints of ``Main.lua`` (400) are never active at their defaults.

The paper's numbers, and what is verified:

- DFA's 1.45% with dropout: the abstract (arXiv:1609.01596 and the NeurIPS
  2016 proceedings), "If combined with dropout, the method achieves 1.45%
  error on the permutation invariant MNIST task". That its network is 2x800
  tanh is ``dfa-torch``'s default (``mlp.lua`` with ``-num_layers 2
  -num_hidden 800 -nonlin tanh``, the README's flag table).
- Everything else in Table 1 is not verified. Its text could not be found
  (searched: the arXiv and proceedings abstract pages, summaries and
  reproducibility reports of the paper, code and READMEs that cite it), so
  its rows and its other numbers are recollections, printed with a "?":
  1x800 tanh, BP 1.59, FA 1.68, DFA 1.68; 100x240 tanh, DFA 3.92 with BP and
  FA not training. The recollections disagree on the rows too: one has a
  2x800 logistic row where this module has 1x800 logistic, and 4x800 tanh
  and 2x800 ReLU rows that it does not train. No row is added or dropped on
  a recollection's word.

Resume: with ``--out``, a cell's estimator is saved every
``--checkpoint-every`` epochs (``checkpoints/<row>-<rule>-seed<seed>.joblib``,
with the epoch and the seconds spent); a rerun with the same ``--out``
skips the cells already in ``nokland2016.json`` and continues the others
from their checkpoints. A cell trains one epoch per ``fit`` with
``warm_start`` (:func:`~skdfa._cli._common.fit_epochs`), which gives the
model of one long fit, bit for bit on numpy.
"""

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import _common
from ._cells import collect_cells, fit_cell, read_cells, save_checkpoint  # noqa: F401 (save_checkpoint: tests' use)
from ._progress import choose_style

ROWS = {
    "1x800": dict(hidden=(800,), activation="tanh", dropout=0.0),
    "2x800": dict(hidden=(800,) * 2, activation="tanh", dropout=0.0),
    "3x800": dict(hidden=(800,) * 3, activation="tanh", dropout=0.0),
    "7x240": dict(hidden=(240,) * 7, activation="tanh", dropout=0.0),
    "100x240": dict(hidden=(240,) * 100, activation="tanh", dropout=0.0),
    "2x800-dropout": dict(hidden=(800,) * 2, activation="tanh", dropout=(0.1, 0.5)),
    "1x800-logistic": dict(hidden=(800,), activation="logistic", dropout=0.0),
}
"""The table's rows: hidden widths, hidden activation, dropout (input, hidden)."""

ROW_TITLES = {
    "1x800": "1x800 tanh",
    "2x800": "2x800 tanh",
    "3x800": "3x800 tanh",
    "7x240": "7x240 tanh",
    "100x240": "100x240 tanh",
    "2x800-dropout": "2x800 tanh + dropout",
    "1x800-logistic": "1x800 logistic",
}

RULES = ("bp", "fa", "dfa")
"""The table's columns, in its order."""

PAPER_ERRORS = {
    ("2x800-dropout", "dfa"): (1.45, True),
    ("1x800", "bp"): (1.59, False),
    ("1x800", "fa"): (1.68, False),
    ("1x800", "dfa"): (1.68, False),
    ("100x240", "dfa"): (3.92, False),
}
"""Test error (%) reported by the paper: ``(value, verified)``. Only the
abstract's 1.45% is verified (sources in the module docstring)."""

PAPER_NOT_TRAINED = {("100x240", "bp"), ("100x240", "fa")}
"""Cells where the paper is recalled to report no training at all
(unverified, like the numbers above)."""

RECIPE = dict(
    solver="rmsprop",
    learning_rate_init=1e-4,
    rho=0.99,
    epsilon=1e-8,
    alpha=0.0,
    batch_size=64,
    output_activation="sigmoid",
    feedback_distribution="uniform",
    feedback_scale="auto",
)
"""Settings shared by every cell (sources in the module docstring)."""

PAPER_EPOCHS = 300
CHECKPOINT_EVERY = 10
"""Default epochs between a cell's checkpoints: what a Ctrl-C can lose."""


@dataclass
class Cell:
    """One trained (row, rule) cell and how it was trained."""

    row: str
    rule: str
    hidden: list
    activation: str
    dropout: object
    weight_init: str
    epochs: int
    n_train: int
    n_test: int
    seed: int
    data: str
    test_error: float
    train_error: float
    fit_seconds: float
    paper_error: float = None
    paper_verified: bool = False
    device: str = "numpy"
    resumed_at_epoch: int = 0
    settings: dict = field(default_factory=lambda: dict(RECIPE))
    loss_curve: list = field(default_factory=list)

    @property
    def identity(self):
        """What makes two runs of a cell the same run (see :func:`cell_identity`)."""
        return cell_identity(self.row, self.rule, epochs=self.epochs, seed=self.seed,
                             n_train=self.n_train, data=self.data, device=self.device)


def cell_identity(row, rule, *, epochs, seed, n_train, data, device):
    """The settings a finished cell or a checkpoint must match to be reused."""
    return dict(row=row, rule=rule, epochs=epochs, seed=seed, n_train=n_train, data=data,
                device=device)


def make_estimator(row, rule, *, epochs=PAPER_EPOCHS, seed=0):
    """The estimator of cell ``(row, rule)`` with the paper's recipe.

    Parameters
    ----------
    row : str
        A key of :data:`ROWS`.
    rule : str
        ``"bp"``, ``"fa"``, ``"dfa"``, or ``package.module:NAME`` for a
        :class:`~skdfa.rules.LearningRule` of one's own (it starts from
        Glorot weights, as BP does).
    epochs : int, default=300
        Training epochs (all of them run: no early stopping).
    seed : int, default=0
        ``random_state`` of the estimator (weights, feedback, shuffling, dropout).

    Returns
    -------
    estimator : DFAClassifier
        Unfitted.

    Examples
    --------
    >>> from skdfa._cli._reproduce import make_estimator
    >>> est = make_estimator("2x800-dropout", "dfa", epochs=3)
    >>> est.hidden_layer_sizes, est.dropout, est.weight_init, est.solver
    ((800, 800), (0.1, 0.5), 'zeros', 'rmsprop')
    """
    spec = ROWS[row]
    return _common.make_learner(
        rule, hidden=spec["hidden"], epochs=epochs, seed=seed,
        activation=spec["activation"], dropout=spec["dropout"],
        weight_init=_weight_init(rule, spec["activation"]), **RECIPE,
    )


def _weight_init(rule, activation):
    # Models/mlp.lua zeroes the weights of DFA and FA networks with tanh or
    # sigmoid units; BP (and relu) keep a random start.
    if rule in ("dfa", "fa") and activation in ("tanh", "logistic"):
        return "zeros"
    return "glorot"


# -- checkpoints -----------------------------------------------------------------


def checkpoint_path(folder, row, rule, seed):
    # A user's rule is package.module:NAME; ":" is no file name character everywhere.
    return Path(folder) / "checkpoints" / f"{row}-{rule.replace(':', '.')}-seed{seed}.joblib"


# -- training --------------------------------------------------------------------


def _errors(est, X_train, X_test, y_train, y_test):
    """Test and training error (%) of a fitted cell."""
    return 100 * (1 - est.score(X_test, y_test)), 100 * (1 - est.score(X_train, y_train))


def _train_cell(row, rule, data, *, epochs, seed, description, device="numpy", folder=None,
                checkpoint_every=CHECKPOINT_EVERY, progress=None):
    """Fit one cell, epoch by epoch, resuming from its checkpoint in
    ``folder`` when there is one; runs in a joblib worker.

    ``progress`` is :func:`~skdfa._cli._progress.choose_style`'s answer.
    """
    identity = cell_identity(row, rule, epochs=epochs, seed=seed, n_train=len(data[0]),
                             data=description, device=device)
    X_train, X_test, y_train, y_test = _common.to_device(data, device)
    with _common.on_device(device):
        fitted = fit_cell(
            lambda: make_estimator(row, rule, epochs=epochs, seed=seed), X_train, y_train,
            epochs, identity=identity, title=f"{ROW_TITLES[row]}, {_common.get_rule(rule).label}",
            path=None if folder is None else checkpoint_path(folder, row, rule, seed),
            checkpoint_every=checkpoint_every, progress=progress, device=device,
        )
        est = fitted.estimator
        test_error, train_error = _errors(est, X_train, X_test, y_train, y_test)
    spec = ROWS[row]
    paper, verified = PAPER_ERRORS.get((row, rule), (None, False))
    return Cell(
        row=row,
        rule=rule,
        hidden=list(spec["hidden"]),
        activation=spec["activation"],
        dropout=spec["dropout"],
        weight_init=est.weight_init,
        epochs=epochs,
        n_train=len(X_train),
        n_test=len(X_test),
        seed=seed,
        data=description,
        test_error=float(test_error),
        train_error=float(train_error),
        fit_seconds=fitted.seconds,
        paper_error=paper,
        paper_verified=verified,
        device=device,
        resumed_at_epoch=fitted.resumed_at,
        loss_curve=[float(v) for v in est.loss_curve_],
    )


def iter_cells(data, cells, *, epochs, seed, n_jobs, description, device="numpy",
               folder=None, checkpoint_every=CHECKPOINT_EVERY, quiet=False):
    """Train the ``(row, rule)`` pairs of ``cells``, yielding each as it finishes.

    Cells run through :class:`sklearn.utils.parallel.Parallel`, so
    ``joblib.parallel_config(backend="dask")`` spreads them over a dask
    cluster; ``n_jobs`` is joblib's. Unordered: a cell is reported (and
    saved) as soon as it is done, whichever finishes first.
    """
    from sklearn.utils.parallel import Parallel, delayed

    progress = choose_style(quiet, in_process=n_jobs in (None, 1))
    jobs = (
        delayed(_train_cell)(row, rule, data, epochs=epochs, seed=seed, description=description,
                             device=device, folder=folder, checkpoint_every=checkpoint_every,
                             progress=progress)
        for row, rule in cells
    )
    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs)


def read_results(folder):
    """The cells recorded in ``folder/nokland2016.json`` (none if absent)."""
    return read_cells(Path(folder) / "nokland2016.json", Cell)


def run(args, out):
    """Train the table that ``args`` selects, print it, and write ``args.out``.

    ``args`` has ``data``, ``rows``, ``rules``, ``epochs``, ``n_train``,
    ``seed``, ``device``, ``n_jobs``, ``out`` (a folder or None),
    ``checkpoint_every``, ``no_plots`` and ``quiet``. With ``out``, the cells
    recorded there by an earlier run with the same settings are not trained
    again, and checkpoints are continued. On Ctrl-C the finished cells are
    printed and written before the ``KeyboardInterrupt`` goes on.
    """
    _common.check_device(args.device)
    loaded = _common.load_data(args.data, seed=args.seed)
    X_train, X_test, y_train, y_test = loaded.arrays
    description = loaded.description
    if args.n_train is not None:
        X_train, y_train = X_train[: args.n_train], y_train[: args.n_train]
    out(f"Nøkland (2016), Table 1, on {description}: {len(X_train)} train / {len(X_test)} "
        f"test samples; {args.epochs} epochs (the paper: {PAPER_EPOCHS}), RMSprop lr 1e-4, "
        f"batch 64, sigmoid outputs + cross-entropy, seed {args.seed}"
        + ("" if args.device == "numpy" else f"; on torch {args.device}"))
    if loaded.name != "MNIST":
        out(f"note: the paper's numbers are for MNIST; this run is on {description}.")
    if args.epochs < PAPER_EPOCHS or len(X_train) < 60000:
        out("note: fewer epochs or samples than the paper: expect higher errors.")

    def identity(row, rule):
        return cell_identity(row, rule, epochs=args.epochs, seed=args.seed,
                             n_train=len(X_train), data=description, device=args.device)

    asked = [(row, rule) for row in args.rows for rule in args.rules]
    earlier = [] if args.out is None else read_results(args.out)
    identities = [identity(row, rule) for row, rule in asked]
    # Cells of other settings stay in the files: one folder can gather runs.
    kept = [c for c in earlier if c.identity not in identities]
    cells = [c for c in earlier if c.identity in identities]
    total = len(asked)
    for cell in cells:
        if not args.quiet:
            out(f"[{cells.index(cell) + 1}/{total}] " + _cell_line(cell) + " (an earlier run)")
    to_train = [key for key, ident in zip(asked, identities)
                if not any(c.identity == ident for c in cells)]

    def finish():
        out("")
        out(format_table(cells, args.rows, args.rules))
        if args.out is not None and cells:
            written = write_results(kept + cells, args.out)
            if not args.no_plots:
                written.append(write_plot(cells, args.rows, args.rules, args.out))
            out(f"results: {', '.join(map(str, written))}")

    finished = iter_cells((X_train, X_test, y_train, y_test), to_train,
                          epochs=args.epochs, seed=args.seed, n_jobs=args.n_jobs,
                          description=description, device=args.device,
                          folder=args.out, checkpoint_every=args.checkpoint_every,
                          quiet=args.quiet)
    return collect_cells(
        finished, cells, total=total, out=out, quiet=args.quiet, folder=args.out,
        save=lambda: write_results(kept + cells, args.out),
        checkpoint_of=lambda cell: checkpoint_path(args.out, cell.row, cell.rule, cell.seed),
        line=_cell_line, finish=finish,
    )


def _cell_line(cell):
    return (f"{ROW_TITLES[cell.row]}, {_common.get_rule(cell.rule).label}: test error "
            f"{cell.test_error:.2f}% "
            f"(paper {_paper_text((cell.row, cell.rule))}), train error "
            f"{cell.train_error:.2f}%, {cell.fit_seconds:.1f} s")


def _paper_text(key):
    """The paper's error of cell ``key = (row, rule)``; ``?`` marks an unverified one."""
    if key in PAPER_NOT_TRAINED:
        return "fail?"
    value, verified = PAPER_ERRORS.get(key, (None, False))
    if value is None:
        return "-"
    return f"{value:.2f}" if verified else f"{value:.2f}?"


def format_table(cells, rows, rules):
    """The table as text: one line per row, ``ours (paper)`` per rule."""
    by_key = {(c.row, c.rule): c for c in cells}
    width = 16
    lines = [
        f"{'test error (%)':<22}"
        + "".join(f"{_common.get_rule(r).label:>{width}}" for r in rules),
        f"{'':<22}" + "".join(f"{'ours  (paper)':>{width}}" for _ in rules),
    ]
    lines.append("-" * len(lines[0]))
    for row in rows:
        entries = []
        for rule in rules:
            cell = by_key.get((row, rule))
            ours = "..." if cell is None else f"{cell.test_error:.2f}"
            entries.append(f"{ours:>7} ({_paper_text((row, rule)):>6})")
        lines.append(f"{ROW_TITLES[row]:<22}" + "".join(f"{e:>{width}}" for e in entries))
    lines.append(
        "paper: Nøkland (2016), Table 1. '?' = recalled for Table 1, not verified "
        "against the paper (nor are the rows); 'fail' = the network does not train; "
        "'-' = no number at hand; '...' = not run."
    )
    return "\n".join(lines)


def write_results(cells, folder):
    """Write ``nokland2016.csv`` and ``nokland2016.json`` (every cell's
    settings, seed, epochs, errors and time); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [asdict(c) for c in cells]
    json_path = folder / "nokland2016.json"
    json_path.write_text(json.dumps(records, indent=1) + "\n")
    csv_path = folder / "nokland2016.csv"
    columns = [k for k in records[0] if k not in ("settings", "loss_curve")] if records else []
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for record in records:
            writer.writerow(
                [" ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                 for v in (record[k] for k in columns)]
            )
    return [csv_path, json_path]


def write_plot(cells, rows, rules, folder):
    """Training loss per epoch, one panel per row, one line per rule in its colour."""
    rows = [r for r in rows if any(c.row == r for c in cells)]
    fig = _common.new_figure(figsize=(4 * len(rows), 3.5))
    axes = fig.subplots(1, len(rows), squeeze=False)
    for ax, row in zip(axes[0], rows):
        for rule in rules:
            for cell in (c for c in cells if (c.row, c.rule) == (row, rule)):
                info = _common.get_rule(rule)
                ax.plot(range(1, len(cell.loss_curve) + 1), cell.loss_curve, color=info.color,
                        label=f"{info.label} ({cell.test_error:.2f}% test error)")
        ax.set(title=ROW_TITLES[row], xlabel="epoch", ylabel="training loss", yscale="log")
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = folder / "loss_curves.png"
    fig.savefig(path, dpi=100)
    return path
