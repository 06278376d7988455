"""Speed and memory of one RD layer ("dct", "gaussian") against a dense layer.

One training step of a single layer of shape (width, width) on a float32
batch: forward (training), backward (dLoss/dX) and the parameters' gradients.
Time is the median over repeats. Memory comes from tracemalloc, which sees
numpy's allocations: "held" is what the layer keeps after it is built (its
parameters and gradient buffers and, for "gaussian", the dense ``R``); "step"
is the peak a training step allocates on top of it. Examples::

    python benchmarks/bench_rd.py
    python benchmarks/bench_rd.py --width 8192 --batch 100 --repeats 5
"""

import argparse
import time
import tracemalloc

import numpy as np

from skdfa._layers import DenseLayer, RDLayer

KINDS = {
    "rd-dct": lambda width: RDLayer(width, width, "dct"),
    "rd-gaussian": lambda width: RDLayer(width, width, "gaussian"),
    "dense": lambda width: DenseLayer(width, width),
}


def _build(kind, width):
    layer = KINDS[kind](width)
    layer.initialize(np.random.RandomState(0), "glorot", "tanh", np.float32)
    return layer


def _step(layer, X, delta, out, grads):
    layer.forward(X, out, training=True)
    layer.backward(delta)
    layer.gradients(X, delta, grads)


def measure(kind, width, batch, repeats):
    """Median seconds of one step, MiB held by the layer, peak MiB of a step."""
    rng = np.random.RandomState(1)
    X = rng.standard_normal((batch, width)).astype(np.float32)
    delta = rng.standard_normal((batch, width)).astype(np.float32)
    out = np.empty((batch, width), np.float32)

    tracemalloc.start()
    layer = _build(kind, width)
    grads = [np.empty_like(p) for p in layer.params]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    _step(layer, X, delta, out, grads)
    step_peak = tracemalloc.get_traced_memory()[1] - held
    tracemalloc.stop()

    _step(layer, X, delta, out, grads)  # warm-up (FFT plans, BLAS buffers)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _step(layer, X, delta, out, grads)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), held / 2**20, step_peak / 2**20, layer.n_params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)

    print(f"one step (forward + backward + gradients), width {args.width}, "
          f"batch {args.batch}, float32, median of {args.repeats}")
    results = {kind: measure(kind, args.width, args.batch, args.repeats) for kind in KINDS}
    columns = ("ms/step", "held MiB", "step MiB", "params")
    print(f"{'layer':>12}" + "".join(f"  {c:>9}" for c in columns))
    for kind, (seconds, held, step, n_params) in results.items():
        print(f"{kind:>12}  {seconds * 1e3:9.2f}  {held:9.1f}  {step:9.1f}  {n_params:10d}")
    dense = results["dense"]
    for kind in ("rd-dct", "rd-gaussian"):
        seconds, held, step, _ = results[kind]
        print(f"dense / {kind}: {dense[0] / seconds:6.1f}x time, "
              f"{dense[1] / held:8.1f}x held memory, {dense[2] / step:5.1f}x step memory")


if __name__ == "__main__":
    main()
