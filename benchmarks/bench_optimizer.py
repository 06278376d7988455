"""The numpy optimizer step: blocked (in cache) against whole arrays.

Times ``update_params`` of each optimizer on the float32 parameters of a
784-hidden-10 network, with the L2 penalty, the two ways numpy can run the
same element-wise step: over blocks of ``NumpyOps.step_block_size`` elements
(skdfa's) and over whole arrays (each ufunc a pass over memory), interleaved,
and checks that both give the same parameters and state bit for bit::

    python benchmarks/bench_optimizer.py
    python benchmarks/bench_optimizer.py --hidden 800 --solvers adam --repeats 21
"""

import argparse
import time

import numpy as np

from skdfa._array_ops import NumpyOps
from skdfa._optimizers import AdamOptimizer, RMSpropOptimizer, SGDOptimizer

OPTIMIZERS = {
    "adam": (AdamOptimizer, (0.9, 0.999, 1e-8)),
    "sgd": (SGDOptimizer, (0.9, True)),
    "rmsprop": (RMSpropOptimizer, (0.9, 1e-8)),
}


class _WholeArrays(NumpyOps):
    """numpy's step over whole arrays: one block per parameter."""

    step_block_size = np.iinfo(np.intp).max


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="1024,1024,1024,1024",
                        help="hidden widths (default: %(default)s)")
    parser.add_argument("--solvers", default="adam,sgd,rmsprop")
    parser.add_argument("--repeats", type=int, default=11,
                        help="steps timed per way (default: %(default)s)")
    args = parser.parse_args(argv)
    units = [784, *(int(w) for w in args.hidden.split(",")), 10]
    rng = np.random.default_rng(0)
    shapes = [s for a, b in zip(units[:-1], units[1:]) for s in ((a, b), (b,))]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) * 1e-2 for s in shapes]
    decay = [1e-4 / 200 if len(s) == 2 else 0.0 for s in shapes]
    n_params = sum(p.size for p in start)
    print(f"784-{args.hidden.replace(',', '-')}-10 float32: {n_params} parameters, "
          f"block {NumpyOps.step_block_size} elements, median of {args.repeats} steps")
    print(f"{'solver':<8} {'blocked ms':>10} {'whole ms':>9} {'whole/blocked':>13}  identical")
    for solver in args.solvers.split(","):
        Optimizer, settings = OPTIMIZERS[solver]
        ways = {}
        for name, ops in (("blocked", NumpyOps()), ("whole", _WholeArrays())):
            params = [p.copy() for p in start]
            optimizer = Optimizer(params, 1e-3, "constant", 0.5, *settings)
            optimizer.bind(ops, params)
            ways[name] = (params, optimizer, [])
        for repeat in range(args.repeats):
            # Alternating which way goes first.
            for name in ("blocked", "whole")[:: 1 if repeat % 2 else -1]:
                params, optimizer, seconds = ways[name]
                step_grads = [g.copy() for g in grads]
                tic = time.perf_counter()
                optimizer.update_params(params, step_grads, decay)
                seconds.append(time.perf_counter() - tic)
        (blocked, opt_b, t_b), (whole, opt_w, t_w) = ways["blocked"], ways["whole"]
        identical = all(
            np.array_equal(a, b)
            for a, b in zip(
                blocked + [s for n in opt_b.state_names for s in getattr(opt_b, n)],
                whole + [s for n in opt_w.state_names for s in getattr(opt_w, n)],
            )
        )
        b, w = 1e3 * np.median(t_b), 1e3 * np.median(t_w)
        print(f"{solver:<8} {b:>10.2f} {w:>9.2f} {w / b:>12.2f}x  {identical}")


if __name__ == "__main__":
    main()
