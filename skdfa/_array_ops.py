"""The engine's array operations, one implementation per array namespace,
chosen once from the arrays by :func:`array_ops`:

- :class:`ArrayOps` (``_ops_base.py``): any array API namespace
  (array_api_strict, CuPy, ...); a result is computed, then copied into its
  buffer.
- :class:`NumpyOps` (``_numpy_ops.py``): numpy's ``out=`` arguments,
  ``einsum`` and scipy's special functions; the default path, and the owner
  of every ``scipy.sparse`` branch.
- :class:`TorchOps` (``_torch_ops.py``): torch's ``out=`` kernels and the
  multi-tensor primitives of the optimizers, on the tensors' device.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.externals import array_api_compat

from ._numpy_ops import NumpyOps
from ._ops_base import ArrayOps
from ._torch_ops import TorchOps

__all__ = ["ArrayOps", "NumpyOps", "TorchOps", "array_ops"]


_NUMPY_OPS = NumpyOps()


_OPS_CACHE = {}


def array_ops(array):
    """The operations for the namespace and device of ``array``.

    Works whatever ``array_api_dispatch`` says: the engine follows the arrays
    it was given, so a fitted torch model keeps predicting with torch.
    """
    # Called several times per training step: one dictionary lookup.
    key = (type(array), getattr(array, "device", None))
    try:
        return _OPS_CACHE[key]
    except KeyError:
        pass
    except TypeError:  # a device that cannot be hashed
        key = (key[0], str(key[1]))
        if key in _OPS_CACHE:
            return _OPS_CACHE[key]
    if isinstance(array, np.ndarray) or sp.issparse(array):
        ops = _NUMPY_OPS
    else:
        xp = array_api_compat.array_namespace(array)
        device = array_api_compat.device(array)
        if array_api_compat.is_numpy_namespace(xp):
            ops = _NUMPY_OPS
        elif array_api_compat.is_torch_namespace(xp):
            ops = TorchOps(xp, device)
        else:
            ops = ArrayOps(xp, device)
    _OPS_CACHE[key] = ops
    return ops
