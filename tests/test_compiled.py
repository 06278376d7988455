"""The optional numba kernels: when they are used, and what replaces them."""

import sys

import numpy as np
import pytest

from skdfa import _compiled
from skdfa._array_ops import NumpyOps
from skdfa._optimizers import AdamOptimizer


def _doubled(x):
    for i in range(x.size):
        x[i] = x[i] * 2


@pytest.fixture
def fresh(monkeypatch):
    # Every test compiles (or not) from scratch.
    monkeypatch.setattr(_compiled, "_dispatchers", {})
    return monkeypatch


def _bound_adam():
    params = [np.ones((3, 2), np.float32)]
    opt = AdamOptimizer(params, 0.01, "constant", 0.5, 0.9, 0.999, 1e-8)
    opt.bind(NumpyOps(), params)
    return opt


def test_without_numba_the_ufuncs_step(fresh):
    fresh.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    assert _compiled.compiled(_doubled) is None
    assert _bound_adam()._compiled_step is None
    assert "numpy's ufuncs" in _compiled.description()


def test_disabled_the_ufuncs_step(fresh):
    pytest.importorskip("numba")
    fresh.setattr(_compiled, "ENABLED", False)
    assert _compiled.compiled(_doubled) is None
    assert _bound_adam()._compiled_step is None
    assert "numpy's ufuncs" in _compiled.description()


def test_with_numba_the_loop_steps(fresh):
    numba = pytest.importorskip("numba")
    loop = _compiled.compiled(_doubled)
    assert loop is _compiled.compiled(_doubled)  # compiled once
    x = np.arange(4.0)
    loop(x)
    np.testing.assert_array_equal(x, [0, 2, 4, 6])
    assert _bound_adam()._compiled_step is not None
    assert f"numba {numba.__version__}" in _compiled.description()


def test_without_a_cache_folder_the_loop_compiles_in_each_process(fresh):
    # numba refuses cache=True where no folder is writable: the loop is still
    # compiled, uncached.
    numba = pytest.importorskip("numba")
    njit = numba.njit

    def refusing_njit(function, cache=False, **options):
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return njit(function, **options)

    fresh.setattr(numba, "njit", refusing_njit)
    x = np.arange(3.0)
    _compiled.compiled(_doubled)(x)
    np.testing.assert_array_equal(x, [0, 2, 4])
