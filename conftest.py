import os

# Lets sklearn's check_array_api_input run (on NumPy inputs) instead of
# skipping; it must be set before scipy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

# One BLAS/OpenMP thread per test process: the suite's arrays are small, so
# extra threads spin more than they compute, and pytest-xdist (``-n auto`` in
# setup.cfg) already runs a process per core (timings in docs/development.rst).
# The docs build's subprocess inherits it. Set before numpy is first imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
