"""Optional compiled kernels: numba, where it is installed (``pip install
skdfa[numba]``).

numpy has no fused element-wise kernels: an optimizer step of numpy's ufuncs
makes a dozen passes over each parameter and its state (Adam: eleven ufuncs,
blocked so that they stay in cache, see ``NumpyOps.step_blocks``). An
optimizer's step written as one loop over the elements and compiled by numba
makes one pass, with the same float operations in the same order and no
contraction into fused multiply-adds, so every element rounds as the
ufuncs round it: a fit is the same bit for bit with and without numba, only
faster.

numba is imported on first use, not with skdfa. ``ENABLED`` set to False
turns the kernels off (the tests compare both paths).
"""

ENABLED = True

# The compiled dispatcher of each loop, compiled for each signature on first
# call (and cached on disk where the package's folder is writable).
_dispatchers = {}


def description():
    """One line: how numpy's optimizer steps run here (the bench prints it)."""
    if ENABLED:
        try:
            import numba
        except ImportError:
            pass
        else:
            return f"numpy's optimizer steps: one numba {numba.__version__} loop per parameter"
    return ("numpy's optimizer steps: numpy's ufuncs, over cache-sized blocks "
            "(pip install numba: one compiled pass, the same results)")


def compiled(loop):
    """``loop`` compiled by numba, or None without numba or when disabled.

    Parameters
    ----------
    loop : callable
        A plain Python function of 1-D arrays and scalars, in the subset of
        Python that numba compiles.

    Returns
    -------
    dispatcher : callable or None
    """
    if not ENABLED:
        return None
    if loop not in _dispatchers:
        try:
            import numba
        except ImportError:
            _dispatchers[loop] = None
        else:
            # error_model="numpy": a division by zero gives inf or nan, as
            # numpy's ufuncs do, rather than raising.
            options = dict(nogil=True, error_model="numpy")
            try:
                _dispatchers[loop] = numba.njit(loop, cache=True, **options)
            except RuntimeError:
                # No writable cache folder: compile in each process.
                _dispatchers[loop] = numba.njit(loop, **options)
    return _dispatchers[loop]
