"""The stochastic training loop shared by every estimator.

It follows ``MLPClassifier._fit_stochastic``: epochs of shuffled mini-batches,
``tol`` / ``n_iter_no_change`` stopping, early stopping on a validation split
that restores the best weights, and the same fitted attributes. It adds:
a snapshot of the weights and optimizer at the end of each epoch, restored
when training is interrupted (KeyboardInterrupt) or diverges, so a fitted
model never holds non-finite weights; alignment tracking; and a per-epoch
progress table. Everything the loop carries between batches and fits lives in
one :class:`FitState` (the estimator's ``_fit_state``: the network, the
optimizer and the :class:`TrainingState`), which snapshots, moves between
namespaces and pickles as one; what it reads of the estimator's parameters
comes in one :class:`TrainingSettings`, and what it records (the epochs, the
loss curve and the validation scores) in one :class:`TrainingRecords`, which
the estimator publishes as its fitted attributes: the loop never touches the
estimator. The loop itself
is small functions: the validation split, the batch iterator (``_Batches``),
an epoch of updates, the end of an epoch, the stopping decision and the table.
"""

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import gen_batches

from ._network import Workspace, train_batch
from ._ops_base import HostLossSum

# Updates between two alignment measurements when ``track_alignment=True``.
DEFAULT_ALIGNMENT_INTERVAL = 10


@dataclass(frozen=True)
class TrainingSettings:
    """What the stochastic loop reads of the estimator's parameters, built by
    the estimator at every fit (``BaseDFA._training_settings``).

    Attributes
    ----------
    max_iter : int
        Epochs of a ``fit`` (``partial_fit`` runs one).
    batch_size : int or "auto"
        ``"auto"``: ``min(200, n_samples)``.
    shuffle : bool
        Whether each epoch visits the rows in a new order.
    tol : float
        The improvement that resets the no-improvement counter.
    n_iter_no_change : int or inf
        Epochs without improvement before stopping.
    early_stopping : bool
        Hold out ``validation_fraction`` of the rows, stop on their score and
        keep the best parameters.
    validation_fraction : float
    verbose : bool or int
        Print the progress table.
    alpha : float
        L2 penalty.
    feedback_decay : float
        Passed to the rule after every update (``Network.update_feedback``).
    track_alignment : bool or int
        Updates between two alignment measurements (True: ten; 0: none).
    dropout : tuple of float
        ``(input_rate, hidden_rate)``.
    learning_rate_init : float
        Quoted by the divergence error.
    stratify : callable
        ``stratify(Y)`` with numpy ``Y``: what the validation split is
        stratified by, or None.
    validation_score : callable
        ``validation_score(net, X, Y, sample_weight)``: the score that early
        stopping follows (higher is better).
    constant_loss : float or None, default=None
        A classifier's loss per sample when it predicts every class as
        equally likely, against which a finite loss that has exploded is
        recognised as divergence (:func:`_exploded`); None for a regressor,
        whose loss has no such scale.
    sync_every_batch : bool, default=False
        Read and check every batch's loss on the host, as the loop did before
        the losses stayed on the device (on a device, a synchronisation per
        batch); ``skdfa bench --effect-of per-batch-sync`` times what that
        costs. Off: the losses are summed where they are, read once per epoch.
    """

    max_iter: int
    batch_size: object
    shuffle: bool
    tol: float
    n_iter_no_change: float
    early_stopping: bool
    validation_fraction: float
    verbose: object
    alpha: float
    feedback_decay: float
    track_alignment: object
    dropout: tuple
    learning_rate_init: float
    stratify: Callable
    validation_score: Callable
    constant_loss: float | None = None
    sync_every_batch: bool = False


@dataclass
class TrainingRecords:
    """What a fit of the loop records, which the estimator publishes as its
    fitted attributes (``n_iter_``, ``t_``, ``loss_``, ``loss_curve_``,
    ``validation_scores_``, ``best_loss_``, ``best_validation_score_``),
    even when the fit raises.

    Attributes
    ----------
    t : int
        Samples seen over every fit.
    loss_curve : list of float
        Extended in place, one loss per epoch.
    validation_scores : list of float or None
        Extended in place with early stopping.
    best_loss, best_validation_score : float or None
    n_iter : int
        Epochs of the current fit.
    loss : float or None
        The last epoch's loss.
    """

    t: int
    loss_curve: list
    validation_scores: list | None
    best_loss: float | None
    best_validation_score: float | None
    n_iter: int = 0
    loss: float | None = None


class TrainingState:
    """What the stochastic training loop carries from batch to batch and from
    fit to fit (``warm_start``, ``partial_fit``), in one object.

    Part of the estimator's :class:`FitState` (its ``training``); snapshots,
    pickles and moves between array namespaces take it whole.

    Parameters
    ----------
    rng : numpy.random.RandomState
        Splits off the validation set, and shuffles the rows (numpy) or seeds
        the device's generator at each epoch (torch: ``ArrayOps.shuffled_rows``).
    dropout_rng : numpy.random.Generator
        Draws the dropout masks (numpy), or seeds the device's generator at
        each epoch (torch: ``ArrayOps.dropout_masks``).

    Attributes
    ----------
    n_updates : int
        Optimizer steps taken.
    alignment, weight_alignment : list of ndarray
        The alignment records (``alignment_``, ``weight_alignment_``).
    alignment_steps : list of int
        The update count of each record.
    no_improvement_count : int
        Epochs since the loss (or validation score) last improved by ``tol``.
    best_params : list of arrays or None
        Copies of the parameters at the best validation score.
    """

    def __init__(self, rng, dropout_rng):
        self.rng = rng
        self.dropout_rng = dropout_rng
        self.n_updates = 0
        self.alignment = []
        self.alignment_steps = []
        self.weight_alignment = []
        self.no_improvement_count = 0
        self.best_params = None

    def move(self, converter):
        """Move the arrays that live with the parameters (``best_params``) with
        ``converter``; the alignment records stay numpy, on the host."""
        if self.best_params is not None:
            self.best_params = [converter(p) for p in self.best_params]

    def record_alignment(self, angles, weight_angles):
        self.alignment.append(angles)
        self.weight_alignment.append(weight_angles)
        self.alignment_steps.append(self.n_updates)


class FitState:
    """Everything a fit carries from batch to batch and from fit to fit, in
    one object: the network (its layers' parameters, the rule's state and the
    feedback stream), the optimizer and the training state (the random
    streams, the counters and the records).

    The estimator holds it as ``_fit_state``; it snapshots and restores
    itself at the end of each epoch (:meth:`snapshot`, :meth:`restore`),
    moves between array namespaces as one (:meth:`move`), and pickles whole.

    Parameters
    ----------
    network : Network
        See Attributes.
    optimizer : BaseOptimizer or None
        See Attributes.
    training : TrainingState
        See Attributes.

    Attributes
    ----------
    network : Network
        The layers, the rule's state and the feedback stream.
    optimizer : BaseOptimizer or None
        None for ``solver="lbfgs"``, which keeps no state between fits.
    training : TrainingState
        The shuffling and dropout streams, counters and alignment records.
    """

    def __init__(self, network, optimizer, training):
        self.network = network
        self.optimizer = optimizer
        self.training = training
        # The last snapshot, whose arrays the next one reuses.
        self._snapshot = None

    def move(self, converter):
        """Replace every array by ``converter(array)``, in place: the
        network's, the optimizer's state and the training state's."""
        self.network.move(converter)
        if self.optimizer is not None:
            self.optimizer.move(converter)
        self.training.move(converter)
        self._snapshot = None

    def __getstate__(self):
        # A snapshot is a spare copy of the state: not pickled.
        return {**self.__dict__, "_snapshot": None}

    def snapshot(self):
        """A copy of everything the next epoch changes (see :meth:`restore`).

        It replaces the previous snapshot, into whose arrays it is copied:
        fresh arrays would cost more than the copy (a partial_fit epoch of
        784-1024-1024-1024-1024-10 spent 34 ms of its second in the page
        faults of 48 MB of new copies). ``partial_fit`` keeps the last one
        for its next call; :meth:`release_snapshot` drops it.
        """
        self._snapshot = _Snapshot(self.network, self.optimizer, self.training, self._snapshot)
        return self._snapshot

    def release_snapshot(self):
        """Drop the last snapshot's arrays (the end of a ``fit``)."""
        self._snapshot = None

    def restore(self, snapshot):
        """Put a :meth:`snapshot` back, in place (the optimizer is replaced by
        the saved one).

        A snapshot interrupted while it was being written over (by the next
        one) restores nothing: it was copying the state of an epoch that had
        ended and passed its checks, which the fit still holds.
        """
        if snapshot.complete:
            self.optimizer = snapshot.restore(self.network, self.training)


class _Snapshot:
    """The training state at the end of an epoch, restored in place.

    Parameters, the rule's state, optimizer, random streams and update
    counters are all kept, so that a fit resumed (``warm_start``) after a
    restore trains exactly as if the interrupted epoch had never started.
    """

    def __init__(self, net, optimizer, state, spare=None):
        ops = net.ops
        self.complete = False
        if spare is not None:
            spare.complete = False  # its arrays are about to become this one's
        self.params = _copies(ops, net.params, spare and spare.params)
        # Feedback that follows the weights or is redrawn (sign symmetry)
        # is saved with the stream it is drawn from.
        self.feedback = _copies(ops, net.rule_state.arrays(), spare and spare.feedback)
        self.feedback_state = net.sampler.rng.get_state()
        # The optimizer's state arrays go into the spare's (deepcopy takes
        # an array found in its memo as its copy).
        memo = {}
        if optimizer is not None and type(spare and spare.optimizer) is type(optimizer):
            for name in optimizer.state_names:
                arrays, spares = getattr(optimizer, name), getattr(spare.optimizer, name)
                for array, copied in zip(arrays, _copies(ops, arrays, spares)):
                    memo[id(array)] = copied
        self.optimizer = copy.deepcopy(optimizer, memo)
        self.rng_state = state.rng.get_state()
        self.dropout_state = state.dropout_rng.bit_generator.state
        self.n_updates = state.n_updates
        self.n_alignment = len(state.alignment)
        self.complete = True

    def restore(self, net, state):
        """Put the saved arrays back; returns the saved optimizer."""
        ops = net.ops
        for array, saved in zip(net.params + net.rule_state.arrays(), self.params + self.feedback):
            ops.copy_into(array, saved)
        net.sampler.rng.set_state(self.feedback_state)
        state.rng.set_state(self.rng_state)
        state.dropout_rng.bit_generator.state = self.dropout_state
        state.n_updates = self.n_updates
        for records in (state.alignment, state.alignment_steps, state.weight_alignment):
            del records[self.n_alignment :]
        return copy.deepcopy(self.optimizer)


def _copies(ops, arrays, spares=None):
    """A copy of each array: into the spare of its shape and dtype where
    ``spares`` has one at its place, else a new one."""
    if spares is None or len(spares) != len(arrays):
        return [ops.copy(a) for a in arrays]
    return [
        ops.copy_into(spare, a)
        if tuple(spare.shape) == tuple(a.shape) and spare.dtype == a.dtype
        else ops.copy(a)
        for a, spare in zip(arrays, spares)
    ]


class TrainingDiverged(ValueError):
    """Raised when the loss or the weights become non-finite, or the loss
    explodes (:func:`_exploded`)."""


# A classifier's epoch whose mean log-loss is this many times that of
# predicting every class as equally likely has diverged even while the loss is
# finite: it can grow for many epochs before it overflows (LeNet under FA at a
# learning rate too high went 1.29, 1.08, 3.3, 85, 4330 in its first five
# epochs), and a fit with too large a feedback scale may start, and stay,
# above 1e10 without ever overflowing.
EXPLODED_OVER_CONSTANT = 1000


def _exploded(loss, constant_loss):
    """Whether an epoch's mean ``loss`` is over ``EXPLODED_OVER_CONSTANT``
    times ``constant_loss`` (:class:`TrainingSettings`)."""
    return constant_loss is not None and loss > EXPLODED_OVER_CONSTANT * constant_loss


def _alignment_interval(track_alignment):
    if track_alignment is True:
        return DEFAULT_ALIGNMENT_INTERVAL
    return int(track_alignment)


# Width of a progress-table column: every cell fits it, ``.5g`` numbers
# (1.2346e+12, -1.2346e-05) included, so the columns stay aligned.
_COLUMN_WIDTH = 11


class _ProgressTable:
    """The per-epoch table printed with ``verbose``: epoch, training loss,
    validation score, mean alignment angle, seconds."""

    def __init__(self, validation, alignment):
        self.validation, self.alignment = validation, alignment

    def header(self):
        columns = ["epoch", "train loss"]
        columns += ["valid score"] if self.validation else []
        columns += ["angle (deg)"] if self.alignment else []
        columns += ["dur (s)"]
        line = "  ".join(f"{c:>{_COLUMN_WIDTH}}" for c in columns)
        print(line)
        print("-" * len(line))

    def row(self, epoch, loss, score, epoch_angles, seconds):
        width = _COLUMN_WIDTH
        cells = [f"{epoch:>{width}d}", f"{loss:>{width}.5g}"]
        if self.validation:
            cells.append(f"{score:>{width}.5g}")
        if self.alignment:
            cells.append(_mean_angle_cell(epoch_angles))
        cells.append(f"{seconds:>{width}.3f}")
        print("  ".join(cells))


def _mean_angle_cell(epoch_angles):
    """The epoch's mean alignment angle, blank when none was measured (an
    epoch between two measurements, or only zero deltas)."""
    angles = np.asarray(epoch_angles, dtype=np.float64).ravel()
    angles = angles[np.isfinite(angles)]
    if angles.size == 0:
        return f"{'':>{_COLUMN_WIDTH}}"
    return f"{angles.mean():>{_COLUMN_WIDTH}.2f}"


def _validation_split(settings, rng, X, Y, sample_weight, ops):
    """The training rows (None: all of them) and the validation set
    ``(X_val, Y_val, sw_val)`` (None without early stopping), split with
    ``rng``.

    Training rows are addressed through an index rather than copied, so early
    stopping costs a copy of the validation rows only.
    """
    if not settings.early_stopping:
        return None, None
    train_rows, val_rows = train_test_split(
        np.arange(X.shape[0]),
        random_state=rng,
        test_size=settings.validation_fraction,
        stratify=settings.stratify(ops.to_numpy(Y)),
    )
    if val_rows.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    val_rows = ops.index(val_rows)
    take = ops.xp.take
    validation = (
        ops.rows(X, val_rows),
        take(Y, val_rows, axis=0),
        None if sample_weight is None else take(sample_weight, val_rows, axis=0),
    )
    return train_rows, validation


def _batch_size(batch_size, n_samples):
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is "
            "going to be clipped"
        )
    return int(np.clip(batch_size, 1, n_samples))


class _Batches:
    """The mini-batches of one epoch: views of X and Y in order, or rows
    gathered into buffers allocated once (X itself is never written to)."""

    def __init__(self, X, Y, sample_weight, train_rows, batch_size, ops):
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.batch_size, self.ops = batch_size, ops
        self.n_samples = X.shape[0] if train_rows is None else train_rows.shape[0]
        # On the device once per fit.
        self.train_rows = None if train_rows is None else ops.index(train_rows)
        self.X_buffer = ops.row_buffer(X, batch_size)
        self.Y_buffer = ops.empty((batch_size, Y.shape[1]), Y.dtype)

    def epoch(self, rng, shuffle):
        """Yield ``(X_batch, Y_batch, sw_batch, weight_sum)`` (``weight_sum``:
        the sum of ``sw_batch`` as a Python float, None without sample
        weights); draws the epoch's order from rng."""
        ops = self.ops
        take = ops.xp.take
        # Drawn in X's namespace, on its device (ArrayOps.shuffled_rows).
        rows = ops.shuffled_rows(rng, self.n_samples) if shuffle else None
        if self.train_rows is not None:
            rows = self.train_rows if rows is None else take(self.train_rows, rows, axis=0)
        X, Y, sample_weight = self.X, self.Y, self.sample_weight
        weight_sums = None
        if sample_weight is not None:
            if rows is not None:
                sample_weight = take(sample_weight, rows, axis=0)
            # Read once per epoch: a batch that learns nothing (its weights
            # sum to zero) is skipped without waiting for the device.
            weight_sums = ops.batch_totals(sample_weight, self.batch_size)
        for i, batch in enumerate(gen_batches(self.n_samples, self.batch_size)):
            sw_batch = None if sample_weight is None else sample_weight[batch]
            weight_sum = None if weight_sums is None else weight_sums[i]
            if rows is None:
                # Views, never written to.
                yield X[batch, :], Y[batch, :], sw_batch, weight_sum
                continue
            index = rows[batch]
            n = batch.stop - batch.start
            yield (
                ops.gather_rows(X, index, self.X_buffer),
                ops.take_rows(Y, index, out=self.Y_buffer[:n, :]),
                sw_batch,
                weight_sum,
            )


def _train_epoch(net, optimizer, state, settings, ws, batches, interval):
    """One epoch of updates; returns its summed batch losses (weighted by
    batch size), its alignment records and its last batch."""
    params = net.params
    # On a device the losses stay there: the sum is read, and checked, once
    # per epoch (a non-finite batch loss makes it non-finite).
    accumulated_loss = (
        HostLossSum() if settings.sync_every_batch else net.ops.loss_accumulator()
    )
    epoch_angles = []
    ws.start_epoch()
    for X_batch, Y_batch, sw_batch, weight_sum in batches.epoch(state.rng, settings.shuffle):
        track = interval > 0 and state.n_updates % interval == 0
        result = train_batch(
            net, ws, X_batch, Y_batch, sw_batch, settings.alpha, track, weight_sum=weight_sum
        )
        if result.loss is None:
            continue
        if not accumulated_loss.add(result.loss, X_batch.shape[0]):
            raise TrainingDiverged(float(result.loss))
        # The weights and feedback this batch's deltas came from.
        weight_angles = None if result.angles is None else net.weight_alignment()
        optimizer.update_params(params, ws.grads, result.weight_decay)
        net.update_feedback(settings.feedback_decay)
        if result.angles is not None:
            state.record_alignment(result.angles, weight_angles)
            epoch_angles.append(result.angles)
        state.n_updates += 1
    loss = accumulated_loss.value()
    if not np.isfinite(loss):
        raise TrainingDiverged(loss)
    return loss, epoch_angles, X_batch


def _end_epoch(net, state, settings, records, validation):
    """Record the epoch's score and update the no-improvement counter."""
    tol = settings.tol
    if validation is not None:
        score = settings.validation_score(net, *validation)
        records.validation_scores.append(score)
        improved = not score < records.best_validation_score + tol
        if score > records.best_validation_score:
            records.best_validation_score = score
            state.best_params = [net.ops.copy(p) for p in net.params]
    else:
        loss = records.loss_curve[-1]
        improved = not loss > records.best_loss - tol
        if loss < records.best_loss:
            records.best_loss = loss
    state.no_improvement_count = 0 if improved else state.no_improvement_count + 1


def _stops(state, settings, optimizer):
    """Whether training stops after an epoch without improvement (the
    adaptive schedule divides the learning rate instead)."""
    if state.no_improvement_count <= settings.n_iter_no_change:
        return False
    what = "Validation score" if settings.early_stopping else "Training loss"
    msg = "%s did not improve more than tol=%f for %d consecutive epochs." % (
        what, settings.tol, settings.n_iter_no_change
    )
    if optimizer.trigger_stopping(msg, settings.verbose):
        return True
    state.no_improvement_count = 0
    return False


def fit_stochastic(fit, settings, records, X, Y, sample_weight, incremental):
    """Train ``fit.network`` on (X, Y) with ``fit.optimizer``.

    Parameters
    ----------
    fit : FitState
        The network, optimizer and training state, trained in place; the
        optimizer is the last finished epoch's after an interruption or a
        divergence.
    settings : TrainingSettings
        Everything the loop reads of the estimator's parameters.
    records : TrainingRecords
        The fitted records, updated in place.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Or an array of any array API namespace, on the network's device.
    Y : ndarray of shape (n_samples, n_outputs)
        Encoded targets, in the network's dtype, namespace and device.
    sample_weight : ndarray of shape (n_samples,) or None
        In the network's namespace and device.
    incremental : bool
        ``partial_fit``: one epoch, no early stopping.
    """
    net, state = fit.network, fit.training
    ops = net.ops
    early_stopping = settings.early_stopping
    if early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    train_rows, validation = _validation_split(settings, state.rng, X, Y, sample_weight, ops)
    n_train = X.shape[0] if train_rows is None else train_rows.shape[0]
    batches = _Batches(
        X, Y, sample_weight, train_rows, _batch_size(settings.batch_size, n_train), ops
    )
    n_samples = batches.n_samples
    ws = Workspace(net, batches.batch_size, settings.dropout, state.dropout_rng)
    fit.optimizer.bind(ops, net.params, ws.decay_sources)
    interval = _alignment_interval(settings.track_alignment)
    table = _ProgressTable(early_stopping, interval > 0) if settings.verbose else None
    # partial_fit calls continue one table: its header is printed once.
    if table and not (incremental and records.t > 0):
        table.header()

    last_epoch = fit.snapshot()
    records.n_iter = 0
    try:
        for _ in range(settings.max_iter):
            start_time = time.perf_counter()
            loss, epoch_angles, X_last = _train_epoch(
                net, fit.optimizer, state, settings, ws, batches, interval
            )
            # The batches' losses check the updates before them; the epoch's
            # last update is checked on its own batch, so that the state kept
            # at the end of an epoch never predicts non-finite outputs.
            if not (ops.all_finite(net.params) and ops.all_finite([net.decision(X_last)])):
                raise TrainingDiverged(np.inf)
            epoch_loss = loss / n_samples
            if _exploded(epoch_loss, settings.constant_loss):
                raise TrainingDiverged(epoch_loss)
            records.n_iter += 1
            records.loss = epoch_loss
            records.t += n_samples
            records.loss_curve.append(records.loss)
            _end_epoch(net, state, settings, records, validation)
            if table:
                table.row(
                    records.n_iter if not incremental else len(records.loss_curve),
                    records.loss, records.validation_scores[-1] if early_stopping else None,
                    epoch_angles, time.perf_counter() - start_time,
                )
            fit.optimizer.iteration_ends(records.t)
            if _stops(state, settings, fit.optimizer) or incremental:
                break
            if records.n_iter == settings.max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                    "optimization hasn't converged yet." % settings.max_iter,
                    ConvergenceWarning,
                )
                break
            # What an interruption or divergence of the next epoch returns to,
            # after the schedule and stopping updates, which belong to this one
            # (the last epoch has no next one: it saves the copy of every array).
            last_epoch = fit.snapshot()
    except KeyboardInterrupt:
        fit.restore(last_epoch)
        warnings.warn(
            "Training interrupted by user: the model keeps the weights of the "
            f"last completed epoch ({records.n_iter})."
        )
    except TrainingDiverged as exc:
        fit.restore(last_epoch)
        loss = exc.args[0]
        how = ("non-finite" if not np.isfinite(loss) else
               f"over {EXPLODED_OVER_CONSTANT} times the {settings.constant_loss:.3g} of "
               f"predicting every class as equally likely")
        if not (early_stopping and state.best_params is not None):
            kept = "last finite epoch" if not np.isfinite(loss) else "epoch before"
            raise ValueError(
                f"Training diverged in epoch {records.n_iter + 1}: the loss became "
                f"{loss:.6g} ({how}). Lower learning_rate_init (now "
                f"{settings.learning_rate_init}) or scale the input features; the "
                f"model keeps the weights of the {kept} ({records.n_iter})."
            ) from None
        warnings.warn(
            f"Training diverged in epoch {records.n_iter + 1} (the loss became "
            f"{loss:.6g}, {how}); stopping early and keeping the best weights found. "
            "Lower learning_rate_init to train further.",
            ConvergenceWarning,
        )

    if not incremental:
        fit.release_snapshot()
    if early_stopping and state.best_params is not None:
        for param, best in zip(net.params, state.best_params):
            ops.copy_into(param, best)
