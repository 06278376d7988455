"""Resumable training cells, shared by the ``reproduce`` tables.

A cell is one estimator trained epoch by epoch for a table. With an output
folder, its estimator is saved every few epochs (a checkpoint: the fitted
estimator, the seconds spent, and whatever the table records per epoch), so
a rerun continues it and Ctrl-C loses at most those epochs.
"""

import json
import os
import time
from dataclasses import dataclass, fields
from typing import Any

from . import _common
from ._progress import EpochProgress


def save_checkpoint(path, identity, estimator, seconds, record=None):
    """Write the checkpoint whole or not at all (a Ctrl-C while writing
    leaves the previous one)."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    joblib.dump(dict(identity=identity, estimator=estimator, seconds=seconds, record=record),
                partial)
    os.replace(partial, path)


def load_checkpoint(path, identity):
    """``(estimator, seconds, record)`` from the checkpoint at ``path`` if it
    is of the cell ``identity``, else None (absent, unreadable or another
    run's)."""
    import joblib

    try:
        saved = joblib.load(path)
    except (OSError, EOFError, ValueError, KeyError, AttributeError, ImportError):
        return None
    if not isinstance(saved, dict) or saved.get("identity") != identity:
        return None
    return saved["estimator"], saved["seconds"], saved.get("record")


def read_cells(path, cell_class):
    """The cells recorded in the JSON file ``path`` as ``cell_class``
    dataclasses (none if it is absent); fields it does not know are dropped."""
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise _common.CommandError(f"{path} is not readable: {exc}") from None
    names = {f.name for f in fields(cell_class)}
    return [cell_class(**{k: v for k, v in record.items() if k in names}) for record in records]


def collect_cells(finished, cells, *, total, out, quiet, folder, save, checkpoint_of, line,
                  finish):
    """Append each cell of the iterable ``finished`` to ``cells`` as it comes.

    Each one is announced with ``line(cell)`` (unless ``quiet``); with an
    output ``folder``, ``save()`` writes the results at once (finished cells
    survive any stop) and the cell's checkpoint ``checkpoint_of(cell)`` is
    removed. ``finish()`` prints the table at the end, and on Ctrl-C too,
    before the ``KeyboardInterrupt`` goes on.
    """
    try:
        for cell in finished:
            cells.append(cell)
            if not quiet:
                out(f"[{len(cells)}/{total}] {line(cell)}")
            if folder is not None:
                save()
                checkpoint_of(cell).unlink(missing_ok=True)
    except KeyboardInterrupt:
        out(f"interrupted: {len(cells)} of {total} cells finished"
            + ("" if folder is None else
               f"; rerun with --out {folder} to continue from the checkpoints"))
        finish()
        raise
    finish()
    return cells


@dataclass
class FittedCell:
    """What :func:`fit_cell` gives back."""

    estimator: Any
    seconds: float
    """Training time, the runs before a resume included."""
    resumed_at: int
    """Epochs that came from the checkpoint (0: trained from the start)."""
    record: Any
    """The table's per-epoch record, as ``after_epoch`` left it."""


def fit_cell(make_estimator, X, y, epochs, *, identity, title, path=None,
             checkpoint_every=10, progress=None, device="numpy", record=None,
             after_epoch=None, epoch_inputs=None):
    """Fit a cell epoch by epoch, continuing its checkpoint at ``path``.

    Parameters
    ----------
    make_estimator : callable
        ``make_estimator()`` gives the unfitted estimator of a fresh start.
    X, y : arrays
        Training data, already on ``device``.
    epochs : int
        Epochs in all (those of a checkpoint count).
    identity : dict
        The settings a checkpoint must match to be continued.
    title : str
        The cell's name in the progress lines.
    path : Path, default=None
        The checkpoint; ``None`` saves none.
    checkpoint_every : int, default=10
        Epochs between checkpoints.
    progress : {None, "bar", "lines"}, default=None
        :func:`~skdfa._cli._progress.choose_style`'s answer.
    device : str, default="numpy"
        Waited for before the time is read.
    record : object, default=None
        The table's per-epoch record of a fresh start; a checkpoint brings
        back its own.
    after_epoch : callable, default=None
        ``after_epoch(est, record)`` after each epoch, before the checkpoint.
    epoch_inputs : callable, default=None
        Each epoch's inputs (data augmentation), as in
        :func:`~skdfa._cli._common.fit_epochs`.

    Returns
    -------
    FittedCell
    """
    saved = None if path is None else load_checkpoint(path, identity)
    if saved is None:
        est, seconds_before = make_estimator(), 0.0
    else:
        est, seconds_before, record = saved
    resumed_at = len(getattr(est, "loss_curve_", ()))
    if progress is not None and resumed_at:
        print(f"  {title}: resuming at epoch {resumed_at} from {path}", flush=True)
    reporter = None if progress is None else EpochProgress(
        title, epochs, start=resumed_at, style=progress
    )
    start = time.perf_counter()

    def seconds():
        return seconds_before + time.perf_counter() - start

    recorded = [resumed_at]

    def each_epoch(est):
        epoch = len(est.loss_curve_)
        if after_epoch is not None:
            after_epoch(est, record)
        recorded[0] = epoch
        if reporter is not None:
            reporter.update(epoch, est.loss_curve_[-1])
        if path is not None and epoch % checkpoint_every == 0 and epoch < epochs:
            save_checkpoint(path, identity, est, seconds(), record)

    def on_interrupt(est):
        # est holds the last finished epoch; the record must have it too.
        if after_epoch is not None and len(est.loss_curve_) > recorded[0]:
            after_epoch(est, record)
        if path is not None and len(est.loss_curve_) > resumed_at:
            save_checkpoint(path, identity, est, seconds(), record)

    try:
        _common.fit_epochs(est, X, y, epochs, after_epoch=each_epoch, on_interrupt=on_interrupt,
                           epoch_inputs=epoch_inputs)
        _common.synchronize(device)
    except ValueError as exc:  # divergence, or a setting the fit refuses: name the cell
        raise _common.CommandError(f"{title}: {exc}") from None
    finally:
        if reporter is not None:
            reporter.close()
    return FittedCell(est, seconds(), resumed_at, record)
