"""The stochastic training loop shared by every estimator.

It follows ``MLPClassifier._fit_stochastic``: epochs of shuffled mini-batches,
``tol`` / ``n_iter_no_change`` stopping, early stopping on a validation split
that restores the best weights, and the same fitted attributes. It adds:
a snapshot of the weights and optimizer at the end of each epoch, restored
when training is interrupted (KeyboardInterrupt) or diverges, so a fitted
model never holds non-finite weights; alignment tracking; and a per-epoch
progress table.
"""

import copy
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import gen_batches

from ._array_ops import array_ops
from ._network import Workspace, train_batch

# Updates between two alignment measurements when ``track_alignment=True``.
DEFAULT_ALIGNMENT_INTERVAL = 10


class _Snapshot:
    """The training state at the end of an epoch, restored in place.

    Parameters, optimizer, random streams and update counters are all kept,
    so that a fit resumed (``warm_start``) after a restore trains exactly as
    if the interrupted epoch had never started.
    """

    def __init__(self, params, estimator):
        ops = array_ops(params[0])
        self.params = [ops.copy(p) for p in params]
        # Feedback that follows the weights or is redrawn (sign symmetry)
        # is saved with the stream it is drawn from.
        net = estimator._network
        self.feedback = [ops.copy(a) for a in net.rule_state.arrays()]
        self.feedback_state = net.sampler.rng.get_state()
        self.optimizer = copy.deepcopy(estimator._optimizer)
        self.rng_state = estimator._rng.get_state()
        self.dropout_state = estimator._dropout_rng.bit_generator.state
        self.n_updates = estimator._n_updates
        self.n_alignment = len(estimator._alignment)

    def restore(self, params, estimator):
        ops = array_ops(params[0])
        for param, saved in zip(params, self.params):
            ops.copy_into(param, saved)
        net = estimator._network
        for array, saved in zip(net.rule_state.arrays(), self.feedback):
            ops.copy_into(array, saved)
        net.sampler.rng.set_state(self.feedback_state)
        estimator._optimizer = copy.deepcopy(self.optimizer)
        estimator._rng.set_state(self.rng_state)
        estimator._dropout_rng.bit_generator.state = self.dropout_state
        estimator._n_updates = self.n_updates
        del estimator._alignment[self.n_alignment :]
        del estimator._alignment_steps[self.n_alignment :]
        del estimator._weight_alignment[self.n_alignment :]


class TrainingDiverged(ValueError):
    """Raised when the loss or the weights become non-finite."""


def _alignment_interval(track_alignment):
    if track_alignment is True:
        return DEFAULT_ALIGNMENT_INTERVAL
    return int(track_alignment)


# Width of a progress-table column: every cell fits it, ``.5g`` numbers
# (1.2346e+12, -1.2346e-05) included, so the columns stay aligned.
_COLUMN_WIDTH = 11


def _print_header(early_stopping, alignment):
    columns = ["epoch", "train loss"]
    columns += ["valid score"] if early_stopping else []
    columns += ["angle (deg)"] if alignment else []
    columns += ["dur (s)"]
    line = "  ".join(f"{c:>{_COLUMN_WIDTH}}" for c in columns)
    print(line)
    print("-" * len(line))


def _mean_angle_cell(epoch_angles):
    """The epoch's mean alignment angle, blank when none was measured (an
    epoch between two measurements, or only zero deltas)."""
    angles = np.asarray(epoch_angles, dtype=np.float64).ravel()
    angles = angles[np.isfinite(angles)]
    if angles.size == 0:
        return f"{'':>{_COLUMN_WIDTH}}"
    return f"{angles.mean():>{_COLUMN_WIDTH}.2f}"


def fit_stochastic(est, X, Y, sample_weight, incremental):
    """Train ``est._network`` on (X, Y) with ``est._optimizer``.

    Parameters
    ----------
    est : BaseDFA
        Supplies the hyper-parameters, the network, the optimizer, the random
        streams, and receives the fitted attributes.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Or an array of any array API namespace, on the network's device.
    Y : ndarray of shape (n_samples, n_outputs)
        Encoded targets, in the network's dtype, namespace and device.
    sample_weight : ndarray of shape (n_samples,) or None
        In the network's namespace and device.
    incremental : bool
        ``partial_fit``: one epoch, no early stopping.
    """
    net = est._network
    params = net.params
    ops = net.ops
    take = ops.xp.take
    rng = est._rng

    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    early_stopping = est.early_stopping
    # Training rows are addressed through an index rather than copied, so
    # early stopping costs a copy of the validation rows only.
    train_rows = None
    if early_stopping:
        train_rows, val_rows = train_test_split(
            np.arange(X.shape[0]),
            random_state=rng,
            test_size=est.validation_fraction,
            stratify=est._stratify(ops.to_numpy(Y)),
        )
        if val_rows.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        val_rows = ops.index(val_rows)
        X_val = X[val_rows] if sp.issparse(X) else take(X, val_rows, axis=0)
        Y_val = take(Y, val_rows, axis=0)
        sw_val = None if sample_weight is None else take(sample_weight, val_rows, axis=0)

    n_samples = X.shape[0] if train_rows is None else train_rows.shape[0]
    if est.batch_size == "auto":
        batch_size = min(200, n_samples)
    else:
        if est.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is "
                "going to be clipped"
            )
        batch_size = int(np.clip(est.batch_size, 1, n_samples))

    ws = Workspace(net, batch_size, est._dropout_rates(), est._dropout_rng)
    interval = _alignment_interval(est.track_alignment)
    dense_batch = None if sp.issparse(X) else ops.empty((batch_size, X.shape[1]), X.dtype)
    target_batch = ops.empty((batch_size, Y.shape[1]), Y.dtype)
    # partial_fit calls continue one table: its header is printed once.
    if est.verbose and not (incremental and est.t_ > 0):
        _print_header(early_stopping, interval > 0)

    last_epoch = _Snapshot(params, est)
    est.n_iter_ = 0
    try:
        for _ in range(est.max_iter):
            start_time = time.perf_counter()
            rows = rng.permutation(n_samples) if est.shuffle else None
            if train_rows is not None:
                rows = train_rows if rows is None else train_rows[rows]
            # One transfer of the epoch's row order to the device.
            rows = None if rows is None else ops.index(rows)
            accumulated_loss = 0.0
            epoch_angles = []
            for batch in gen_batches(n_samples, batch_size):
                n_batch = batch.stop - batch.start
                if rows is None:
                    # Views, never written to.
                    X_batch, Y_batch = X[batch, :], Y[batch, :]
                    sw_batch = None if sample_weight is None else sample_weight[batch]
                else:
                    index = rows[batch]
                    if dense_batch is None:
                        X_batch = X[index]
                    else:
                        X_batch = ops.take_rows(X, index, out=dense_batch[:n_batch, :])
                    Y_batch = ops.take_rows(Y, index, out=target_batch[:n_batch, :])
                    sw_batch = (
                        None if sample_weight is None else take(sample_weight, index, axis=0)
                    )
                track = interval > 0 and est._n_updates % interval == 0
                loss, angles = train_batch(
                    net, ws, X_batch, Y_batch, sw_batch, est.alpha, track
                )
                if loss is None:
                    continue
                if not np.isfinite(loss):
                    raise TrainingDiverged(loss)
                accumulated_loss += loss * n_batch
                if angles is not None:
                    # The weights and feedback this batch's deltas came from.
                    est._weight_alignment.append(net.weight_alignment())
                est._optimizer.update_params(params, ws.grads, ws.weight_decay)
                net.update_feedback(est.feedback_decay)
                if angles is not None:
                    est._alignment.append(angles)
                    est._alignment_steps.append(est._n_updates)
                    epoch_angles.append(angles)
                est._n_updates += 1

            # Each batch's loss checks the update before it; the epoch's last
            # update is checked on its own batch, so that the state kept at
            # the end of an epoch never predicts non-finite outputs.
            if not (ops.all_finite(params) and ops.all_finite([net.decision(X_batch)])):
                raise TrainingDiverged(np.inf)
            est.n_iter_ += 1
            est.loss_ = accumulated_loss / n_samples
            est.t_ += n_samples
            est.loss_curve_.append(est.loss_)
            if early_stopping:
                _update_validation(est, net, params, X_val, Y_val, sw_val)
            else:
                _update_training_loss(est)

            if est.verbose:
                width = _COLUMN_WIDTH
                epoch = est.n_iter_ if not incremental else len(est.loss_curve_)
                row = [f"{epoch:>{width}d}", f"{est.loss_:>{width}.5g}"]
                if early_stopping:
                    row.append(f"{est.validation_scores_[-1]:>{width}.5g}")
                if interval > 0:
                    row.append(_mean_angle_cell(epoch_angles))
                row.append(f"{time.perf_counter() - start_time:>{width}.3f}")
                print("  ".join(row))

            est._optimizer.iteration_ends(est.t_)
            if est._no_improvement_count > est.n_iter_no_change:
                if early_stopping:
                    msg = (
                        "Validation score did not improve more than tol=%f for %d"
                        " consecutive epochs." % (est.tol, est.n_iter_no_change)
                    )
                else:
                    msg = (
                        "Training loss did not improve more than tol=%f for %d"
                        " consecutive epochs." % (est.tol, est.n_iter_no_change)
                    )
                if est._optimizer.trigger_stopping(msg, est.verbose):
                    break
                est._no_improvement_count = 0
            # After the schedule and stopping updates, which belong to this epoch.
            last_epoch = _Snapshot(params, est)
            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                    "optimization hasn't converged yet." % est.max_iter,
                    ConvergenceWarning,
                )
    except KeyboardInterrupt:
        last_epoch.restore(params, est)
        warnings.warn(
            "Training interrupted by user: the model keeps the weights of the "
            f"last completed epoch ({est.n_iter_})."
        )
    except TrainingDiverged as exc:
        last_epoch.restore(params, est)
        if not (early_stopping and est._best_params is not None):
            raise ValueError(
                f"Training diverged in epoch {est.n_iter_ + 1}: the loss became "
                f"{exc.args[0]} (non-finite). Lower learning_rate_init (now "
                f"{est.learning_rate_init}) or scale the input features; the "
                f"model keeps the weights of the last finite epoch ({est.n_iter_})."
            ) from None
        warnings.warn(
            f"Training diverged in epoch {est.n_iter_ + 1} (non-finite loss); "
            "stopping early and keeping the best weights found. Lower "
            "learning_rate_init to train further.",
            ConvergenceWarning,
        )

    if early_stopping and est._best_params is not None:
        for param, best in zip(params, est._best_params):
            ops.copy_into(param, best)


def _update_validation(est, net, params, X_val, Y_val, sw_val):
    score = est._validation_score(net, X_val, Y_val, sw_val)
    est.validation_scores_.append(score)
    if score < est.best_validation_score_ + est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if score > est.best_validation_score_:
        est.best_validation_score_ = score
        est._best_params = [net.ops.copy(p) for p in params]


def _update_training_loss(est):
    if est.loss_curve_[-1] > est.best_loss_ - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if est.loss_curve_[-1] < est.best_loss_:
        est.best_loss_ = est.loss_curve_[-1]
