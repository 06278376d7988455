"""Samplers of the fixed random feedback matrices.

Each sampler draws a matrix of a given shape whose entries have zero mean and
"size" ``scale``: the half-width of a uniform distribution, or the standard
deviation of a gaussian. A new distribution is one function in
``FEEDBACK_SAMPLERS``.
"""

import numpy as np


def _uniform(rng, shape, scale, dtype):
    return rng.uniform(-scale, scale, size=shape).astype(dtype, copy=False)


def _gaussian(rng, shape, scale, dtype):
    return (rng.standard_normal(size=shape) * scale).astype(dtype, copy=False)


FEEDBACK_SAMPLERS = {"uniform": _uniform, "gaussian": _gaussian}


# The uniform distribution of variance ``v`` has half-width ``sqrt(3 v)``.
_GLOROT_SIZE = {"uniform": lambda variance: np.sqrt(3.0 * variance), "gaussian": np.sqrt}


def feedback_scale(feedback_scale, receiving_width, shape, distribution):
    """Resolve ``feedback_scale`` to the entries' size for ``distribution``.

    ``"auto"`` is ``1 / sqrt(receiving_width)``. The receiving width is the
    number of units of the layer the feedback matrix sends the error to, as
    in Nøkland's reference code: the projected error then has the same order
    of magnitude whatever the layer's width.

    ``"glorot"`` gives the entries Glorot's variance ``2 / (fan_in +
    fan_out)`` of the feedback array's own shape, counted as torch counts a
    weight's fans (``shape[1]`` and ``shape[0]`` times the kernel's size):
    biotorch's ``xavier_uniform_`` draw of its backward weights.
    """
    if feedback_scale == "auto":
        return 1.0 / np.sqrt(receiving_width)
    if feedback_scale == "glorot":
        kernel_size = int(np.prod(shape[2:]))
        fans = (shape[0] + shape[1]) * kernel_size
        return float(_GLOROT_SIZE[distribution](2.0 / fans))
    return float(feedback_scale)
