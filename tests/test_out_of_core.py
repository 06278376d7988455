"""Out-of-core training: ``partial_fit`` over the blocks of a dask array,
on a cluster, as dask-ml's ``Incremental`` does it (a chain of tasks that
each take the model, train it on one block and hand it on).
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

from skdfa import DFAClassifier


def _partial_fit(model, X, y, classes):
    return model.partial_fit(X, y, classes=classes)


def test_partial_fit_over_a_dask_arrays_blocks_on_a_cluster_is_the_numpy_loop():
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    classes = np.unique(y)
    params = dict(hidden_layer_sizes=(16,), batch_size=50, random_state=0)
    X_blocks = da.from_array(X, chunks=(300, -1))
    y_blocks = da.from_array(y, chunks=300)

    in_memory = DFAClassifier(**params)
    for start in range(0, len(X), 300):
        in_memory.partial_fit(X[start:start + 300], y[start:start + 300], classes=classes)

    model = dask.delayed(DFAClassifier(**params))
    for X_block, y_block in zip(X_blocks.to_delayed().ravel(), y_blocks.to_delayed().ravel()):
        model = dask.delayed(_partial_fit)(model, X_block, y_block, classes)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        # The blocks are read, and the model trained, in the workers' processes.
        out_of_core = model.compute()

    assert len(out_of_core.loss_curve_) == len(X_blocks.chunks[0]) == 6
    for a, b in zip(out_of_core.coefs_ + out_of_core.intercepts_,
                    in_memory.coefs_ + in_memory.intercepts_):
        assert_array_equal(a, b)
    assert out_of_core.loss_curve_ == in_memory.loss_curve_
