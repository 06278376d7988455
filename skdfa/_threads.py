"""Element-wise numpy work split across threads.

BLAS already spreads the matrix products over the cores, but numpy's
element-wise ufuncs run on one core; for the optimizer's updates of large
weight matrices this is a large share of each step. NumPy releases the GIL in
ufunc loops, so slicing flat arrays into one contiguous piece per thread gives
a near-linear speed-up. Element-wise results do not depend on the slicing, so
the output is bit-identical whatever the thread count.
"""

import os
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_info

# Arrays smaller than this are not worth a thread hand-off.
MIN_PARALLEL_SIZE = 1 << 16

_pools = {}


def elementwise_threads():
    """Threads to use: as many as BLAS may use now (so ``threadpool_limits``,
    e.g. inside StackingDFA's workers, caps this too), at most the cores."""
    blas = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max(1, min(max(blas, default=1), os.cpu_count() or 1))


def _pool(n_threads):
    if n_threads not in _pools:
        _pools[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="skdfa")
    return _pools[n_threads]


def map_slices(func, groups, n_threads):
    """Call ``func(*flat_slices)`` on aligned slices of each group of arrays.

    Parameters
    ----------
    func : callable
        Works in place on its arguments.
    groups : list of list of ndarray
        Each group holds C-contiguous arrays of one size, sliced alike.
    n_threads : int
        Number of slices per large group (and of threads).
    """
    tasks = []
    for arrays in groups:
        flat = [a.reshape(-1) for a in arrays]
        size = flat[0].size
        pieces = n_threads if size >= MIN_PARALLEL_SIZE else 1
        bounds = [size * k // pieces for k in range(pieces + 1)]
        tasks += [[f[a:b] for f in flat] for a, b in zip(bounds[:-1], bounds[1:])]
    if n_threads == 1 or len(tasks) == 1:
        for task in tasks:
            func(*task)
    else:
        for future in [_pool(n_threads).submit(func, *task) for task in tasks]:
            future.result()
