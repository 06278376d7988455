"""The numpy optimizer step: compiled, blocked (in cache) and over whole arrays.

Times ``update_params`` of each optimizer on the float32 parameters of a
784-hidden-10 network, with the L2 penalty, the ways numpy can run the same
element-wise step: one numba-compiled loop per parameter (skdfa's where numba
is installed), numpy's ufuncs over blocks of ``NumpyOps.step_block_size``
elements (skdfa's without numba) and over whole arrays (each ufunc a pass over
memory), interleaved after one untimed step, and checks that all give the same
parameters and state bit for bit::

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


class _Blocked(NumpyOps):
    """numpy's ufuncs over blocks, whether numba is installed or not."""

    def compiled_step(self, loop):
        return None


class _WholeArrays(_Blocked):
    """numpy's ufuncs over whole arrays: one block per parameter."""

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
    names = ["blocked", "whole"]
    if NumpyOps().compiled_step(AdamOptimizer.step_loop) is not None:
        names.insert(0, "compiled")
    print(f"{'solver':<8}" + "".join(f" {name + ' ms':>12}" for name in names)
          + "".join(f" {name + '/' + names[0]:>16}" for name in names[1:]) + "  identical")
    ops = {"compiled": NumpyOps(), "blocked": _Blocked(), "whole": _WholeArrays()}
    for solver in args.solvers.split(","):
        Optimizer, settings = OPTIMIZERS[solver]
        ways = {}
        for name in names:
            params = [p.copy() for p in start]
            optimizer = Optimizer(params, 1e-3, "constant", 0.5, *settings)
            optimizer.bind(ops[name], params)
            # Untimed: numba compiles the loop on its first call.
            optimizer.update_params(params, [g.copy() for g in grads], decay)
            ways[name] = (params, optimizer, [])
        for repeat in range(args.repeats):
            # Turning which way goes first.
            for name in names[repeat % len(names):] + names[: repeat % len(names)]:
                params, optimizer, seconds = ways[name]
                step_grads = [g.copy() for g in grads]
                tic = time.perf_counter()
                optimizer.update_params(params, step_grads, decay)
                seconds.append(time.perf_counter() - tic)
        arrays = {
            name: params + [s for n in opt.state_names for s in getattr(opt, n)]
            for name, (params, opt, _) in ways.items()
        }
        identical = all(
            a.tobytes() == b.tobytes()
            for name in names[1:] for a, b in zip(arrays[names[0]], arrays[name])
        )
        ms = [1e3 * np.median(ways[name][2]) for name in names]
        print(f"{solver:<8}" + "".join(f" {m:>12.2f}" for m in ms)
              + "".join(f" {m / ms[0]:>15.2f}x" for m in ms[1:]) + f"  {identical}")


if __name__ == "__main__":
    main()
