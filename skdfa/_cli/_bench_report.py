"""The bench's report: the speed tables and the project's targets, each
printed as MET or MISS from the ratios of one interleaved run (reported,
never asserted), for the learners that ran.
"""

import os
import textwrap

import numpy as np

from ._bench_measure import available_cores, training_flops_per_sample

# The project's targets (issue 30).
DEEP_HIDDEN = (1024, 1024, 1024, 1024)  # the net of the DFA/BP and numpy targets
TORCH_LOOP_TARGET = 1.0  # skdfa DFA on torch CPU / the plain PyTorch DFA loop, time
DFA_BP_TARGET = 0.8  # skdfa DFA / skdfa BP, time, on DEEP_HIDDEN
SPEEDUP_TARGET = 2.0  # MLPClassifier / numpy DFA, time, on DEEP_HIDDEN
MATMUL_FRACTION_TARGET = 0.45  # numpy DFA's share of the matmul rate, on DEEP_HIDDEN
DROPOUT_TARGET = 1.10  # dropout 0.1/0.5 / none, torch CPU, batch 64
DROPOUT_BATCH_SIZE = 64
PARTIAL_FIT_TARGET = 2e-3  # seconds per partial_fit call beyond its batches' work
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


CONV_FLOP_EXPLANATION = """\
FLOPs per training sample = 2 x (multiply-adds of the matrix products):
  forward        a convolution C_out*H_out*W_out * C_in*kh*kw, a dense layer n_in*n_out
  weight grads   as many as the forward products, every layer with parameters
  error signal   bp: an input gradient through every layer with parameters above
                   the first, as many as its forward product (poolings: none)
                 dfa ("kernel" form): n_out * the width of each map the error
                   is projected onto (e @ B, or e @ D for the constant-map
                   projection under a convolution; D is built once, not counted)
Element-wise work (activations, pooling, im2col copies, loss, adam) is not counted.
"% matmul" divides GFLOP/s by the float32 np.matmul rate measured in this run on
the same products (a convolution's im2col product (batch*H_out*W_out, C_in*kh*kw)
@ (C_in*kh*kw, C_out) and its weight-gradient product, batch 200; the better of
before and after training), the rate an im2col implementation would reach. On
a busy machine both rates are noisy: compare them only from a quiet one."""


def print_table(arch_name, rows, rate, n_train, out):
    """The speed table of one architecture, against its first row
    (MLPClassifier on the dense nets)."""
    reference = rows[0].seconds_per_epoch
    versus = "vs sklearn" if rows[0].learner == "mlp" else f"vs {rows[0].rule}"
    activation = "tanh" if rows[0].layers is None else "relu"
    out("")
    out(f"{arch_name} {activation}    (float32 matmul rate on these shapes: {rate:.1f} GFLOP/s)")
    header = (
        f"{'learner':<22} {'s/epoch':>8} {versus:>10} {'MFLOP/smp':>9} {'GFLOP/s':>8} "
        f"{'% matmul':>8} {'peak MB':>8} {'test acc':>8}"
    )
    out(header)
    out("-" * len(header))
    for row in rows:
        gflops = row.gflops(n_train)
        out(
            f"{row.name:<22} {row.seconds_per_epoch:>8.3f} "
            f"{reference / row.seconds_per_epoch:>9.2f}x {row.flops_per_sample / 1e6:>9.2f} "
            f"{gflops:>8.1f} "
            f"{100 * gflops / rate:>7.0f}% "
            + (f"{row.peak_bytes / 2**20:>8.1f} " if row.device == "numpy" else f"{'-':>8} ")
            + f"{row.accuracy:>8.4f}"
        )


def macs_ratio(network, rule="dfa", reference="bp"):
    """The epoch-time ratio that the multiply-adds allow ``rule`` against
    ``reference`` on ``network`` (a dense net's widths, or its layers).

    Examples
    --------
    >>> from skdfa._cli._bench_report import macs_ratio
    >>> round(macs_ratio([784, 1024, 1024, 1024, 1024, 10]), 3)
    0.719
    >>> macs_ratio([784, 800, 10])
    1.0
    """
    return (training_flops_per_sample(network, rule)
            / training_flops_per_sample(network, reference))


def _is_deep(units):
    return tuple(units[1:-1]) == DEEP_HIDDEN


def targets(results, rates, n_train, real_data, accuracy=True):
    """The targets of the learners that ran.

    Parameters
    ----------
    results : dict
        Architecture -> list of BenchResult.
    rates : dict
        Architecture -> float32 matmul rate (GFLOP/s).
    n_train : int
        Training samples per epoch.
    real_data : bool
        Whether the data is Fashion-MNIST (the accuracy targets apply).
    accuracy : bool, default=True
        Include the accuracy targets.

    Returns
    -------
    targets : list of (description, value, passed)
        ``passed`` is None where the target does not apply (a net other than
        the target's, accuracy on other data than Fashion-MNIST): the value
        is reported for information.
    """
    rows = []
    deep = "784-" + "-".join(map(str, DEEP_HIDDEN)) + "-10"
    for name, learners in results.items():
        units = learners[0].units
        network = units if learners[0].layers is None else learners[0].layers
        by_key = {(row.learner, row.device): row for row in learners if not row.variant}
        seconds = {key: row.seconds_per_epoch for key, row in by_key.items()}
        if ("dfa", "cpu") in seconds and ("torch-loop", "cpu") in seconds:
            ratio = seconds["dfa", "cpu"] / seconds["torch-loop", "cpu"]
            rows.append((
                f"skdfa DFA on torch CPU <= {TORCH_LOOP_TARGET:.1f}x the plain PyTorch DFA "
                f"loop's epoch on {name}", f"{ratio:.2f}x", ratio <= TORCH_LOOP_TARGET,
            ))
        for device in dict.fromkeys(device for _, device in seconds):
            if ("dfa", device) in seconds and ("bp", device) in seconds:
                ratio = seconds["dfa", device] / seconds["bp", device]
                where = "numpy" if device == "numpy" else f"torch {device}"
                rows.append((
                    f"skdfa DFA <= {DFA_BP_TARGET}x skdfa BP's epoch ({where}) on {deep}"
                    + ("" if _is_deep(units) else f" (here {name})"),
                    f"{ratio:.2f} (multiply-adds allow {macs_ratio(network):.2f})",
                    ratio <= DFA_BP_TARGET if _is_deep(units) else None,
                ))
        if ("dfa", "numpy") in seconds and ("mlp", "numpy") in seconds:
            here = "" if _is_deep(units) else f" (here {name})"
            speedup = seconds["mlp", "numpy"] / seconds["dfa", "numpy"]
            rows.append((
                f"numpy DFA >= {SPEEDUP_TARGET:.1f}x faster per epoch than MLPClassifier "
                f"on {deep}{here}", f"{speedup:.2f}x",
                speedup >= SPEEDUP_TARGET if _is_deep(units) else None,
            ))
            fraction = by_key["dfa", "numpy"].gflops(n_train) / rates[name]
            rows.append((
                f"numpy DFA >= {MATMUL_FRACTION_TARGET:.0%} of the matmul rate on "
                f"{deep}{here}", f"{fraction:.0%}",
                fraction >= MATMUL_FRACTION_TARGET if _is_deep(units) else None,
            ))
    first = next(iter(results))
    by_learner = {row.learner: row for row in results[first] if row.device == "numpy"}
    if accuracy and "dfa" in by_learner and {"bp", "mlp"} & set(by_learner):
        dfa = by_learner["dfa"]
        bp = by_learner.get("bp", by_learner.get("mlp"))
        rows.append((
            f"DFA test accuracy >= {ACCURACY_TARGET:.1%} on Fashion-MNIST {first}",
            f"{dfa.accuracy:.2%}",
            dfa.accuracy >= ACCURACY_TARGET if real_data else None,
        ))
        rows.append((
            f"DFA within {100 * BP_GAP_TARGET:.0f} point of BP ({bp.name}) at equal "
            f"settings on {first}",
            f"{100 * (dfa.accuracy - bp.accuracy):+.2f} points",
            dfa.accuracy >= bp.accuracy - BP_GAP_TARGET if real_data else None,
        ))
    return rows


def effect_targets(effect, pairs, batch_size):
    """The targets of ``--effect-of``: dropout's cost on torch CPU.

    Parameters
    ----------
    effect : str
    pairs : dict
        Architecture -> list of ``(without, with_effect)`` BenchResult pairs.
    batch_size : int

    Returns
    -------
    targets : list of (description, value, passed)
        As :func:`targets`; the dropout target applies at batch 64.
    """
    rows = []
    if effect != "dropout":
        return rows
    for name, learner_pairs in pairs.items():
        for base, other in learner_pairs:
            if base.device != "cpu" or base.learner == "mlp":
                continue
            ratio = paired_ratio(base, other)
            rows.append((
                f"dropout adds <= {DROPOUT_TARGET - 1:.0%} to {base.name}'s epoch at batch "
                f"{DROPOUT_BATCH_SIZE}" + ("" if batch_size == DROPOUT_BATCH_SIZE
                                          else f" (here batch {batch_size})")
                + f" on {name}",
                f"{ratio - 1:+.1%}",
                ratio <= DROPOUT_TARGET if batch_size == DROPOUT_BATCH_SIZE else None,
            ))
    return rows


def partial_fit_targets(overheads):
    """The target of the ``partial_fit`` overhead, from ``(learner,
    seconds per call beyond its batches' work, on the target's net)`` rows."""
    return [
        (f"partial_fit costs <= {1e3 * PARTIAL_FIT_TARGET:.0f} ms per call beyond its "
         f"batches' work on a 64-64 net ({learner})", f"{1e3 * seconds:.2f} ms",
         seconds <= PARTIAL_FIT_TARGET if on_target_net else None)
        for learner, seconds, on_target_net in overheads
    ]


def print_targets(rows, out):
    """``Targets:`` and a MET, MISS or n/a line per target."""
    if not rows:
        return
    out("")
    out("Targets:")
    for description, value, passed in rows:
        verdict = "n/a " if passed is None else ("MET " if passed else "MISS")
        out(f"  {verdict}  {description}: {value}")


def paired_ratio(base, other):
    """The median over epochs of ``other``'s epoch over ``base``'s just
    before it (or after it, in reverse order)."""
    return float(np.median(np.array(other.epoch_seconds) / np.array(base.epoch_seconds)))


def print_effect_table(arch_name, pairs, base_name, effect_name, out):
    """The ``--effect-of`` table of one architecture."""
    out("")
    out(f"{arch_name} tanh")
    header = (f"{'learner':<26} {base_name:>12} {effect_name:>16} "
              f"{'ratio':>7} {'range':>13}")
    out(header)
    out("-" * len(header))
    for base, other in pairs:
        ratios = np.array(other.epoch_seconds) / np.array(base.epoch_seconds)
        out(
            f"{base.name:<26} {base.seconds_per_epoch:>12.3f} "
            f"{other.seconds_per_epoch:>16.3f} {np.median(ratios):>6.3f}x "
            f"{f'{ratios.min():.3f}-{ratios.max():.3f}':>13}"
        )


def _load_average():
    """The system's load average over the last minute, or None (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def print_threads(threads, rows, out):
    """What the bench did about threads, how long it waited after the epochs
    of ``rows`` (BenchResult) for idle ones, and whether other jobs ran."""
    waits = [w for row in rows for w in row.idle_waits]
    text = (f"Threads: {threads.describe()}. After each epoch the bench waited, untimed, for "
            "this process's threads to go idle (numpy's OpenBLAS workers spin about 0.1 s "
            f"after their last product): at most {1e3 * max(waits, default=0):.0f} ms.")
    load, cores = _load_average(), available_cores()
    if load is not None and load > cores:
        text += (f" The machine was busy: load average {load:.1f} on {cores} cores, other jobs "
                 "taking turns on them.")
        if threads.n > 1:
            text += (" A multi-threaded kernel then waits for its descheduled threads (measured "
                     "here: torch's small element-wise kernels 1000x slower with 2 threads "
                     "than with 1): compare ratios from a quiet machine, or run with "
                     "--threads 1.")
        else:
            text += " Compare ratios from a quiet machine."
    for line in textwrap.wrap(text, width=88):
        out(line)



def first_reaching(result, accuracy):
    """``(epochs, seconds)`` to the first epoch whose held-out accuracy is at
    least ``accuracy`` (every epoch's time counted, the first included), or
    None if none reaches it.

    Examples
    --------
    >>> from skdfa._cli._bench_measure import BenchResult
    >>> from skdfa._cli._bench_report import first_reaching
    >>> row = BenchResult("dfa", [4, 2, 2], all_seconds=[3.0, 1.0, 1.0],
    ...                   accuracies=[0.5, 0.8, 0.9])
    >>> first_reaching(row, 0.8)
    (2, 4.0)
    >>> first_reaching(row, 0.95) is None
    True
    """
    for epoch, reached in enumerate(result.accuracies, start=1):
        if reached >= accuracy:
            return epoch, float(sum(result.all_seconds[:epoch]))
    return None


def print_to_accuracy_table(arch_name, rows, accuracy, out):
    """The ``--to-accuracy`` table of one architecture.

    ``rows`` are ``(learning rate, BenchResult)`` pairs. Per pair: the
    epochs and seconds to ``accuracy``, the final and the best held-out
    accuracy; each learner's fastest rate to ``accuracy`` is marked ``*``.
    """
    out("")
    out(f"{arch_name} tanh, to held-out accuracy {accuracy:.2%}")
    header = (f"{'learner':<26} {'lr':>7} {'epochs':>6} {'seconds':>8} {'final acc':>9} "
              f"{'best acc':>8}")
    out(header)
    out("-" * len(header))
    fastest = {}
    for _, row in rows:
        reached = first_reaching(row, accuracy)
        if reached and reached[1] < fastest.get(row.name, (None, np.inf))[1]:
            fastest[row.name] = (row, reached[1])
    for rate, row in rows:
        reached = first_reaching(row, accuracy)
        epochs, seconds = ("-", "-") if reached is None else (reached[0], f"{reached[1]:.2f}")
        mark = " *" if fastest.get(row.name, (None,))[0] is row else ""
        out(f"{row.name:<26} {rate:>7g} {epochs:>6} {seconds:>8} "
            f"{row.accuracies[-1]:>9.4f} {max(row.accuracies):>8.4f}{mark}")


def plot_to_accuracy(table, accuracy, path):
    """Held-out accuracy against training seconds, one panel per architecture
    and one line per learner and rate (``--to-accuracy A --plot PATH``).

    Parameters
    ----------
    table : dict
        Architecture -> list of ``(learning rate, BenchResult)``, as
        ``run_to_accuracy`` returns it.
    accuracy : float
        The target, drawn as a horizontal line.
    path : str or Path
        The image file written.
    """
    from ..plotting import rule_color
    from . import _common

    figure = _common.new_figure(figsize=(8, 4.5 * len(table)))
    for ax, (name, rows) in zip(np.atleast_1d(figure.subplots(len(table), 1)), table.items()):
        rates = sorted({rate for rate, _ in rows})
        for rate, row in rows:
            # The rule's colour (MLPClassifier's black, as in every skdfa
            # figure), a line style per library and device, a marker per rate.
            style = "--" if row.learner == "mlp" else ("-" if row.device == "numpy" else ":")
            color = rule_color("sklearn" if row.learner == "mlp" else row.rule)
            ax.plot(np.cumsum(row.all_seconds), row.accuracies, linestyle=style,
                    marker="osD^v<>"[rates.index(rate) % 7], markersize=4,
                    color=color, label=f"{row.name}, lr {rate:g}")
        ax.axhline(accuracy, color="grey", linewidth=0.8)
        ax.set(title=f"{name} tanh", xlabel="training seconds (every epoch)",
               ylabel="held-out accuracy")
        ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
