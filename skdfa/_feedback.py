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


def feedback_scale(feedback_scale, receiving_width):
    """Resolve ``feedback_scale="auto"`` to ``1 / sqrt(receiving_width)``.

    The receiving width is the number of units of the layer the feedback
    matrix sends the error to, as in Nøkland's reference code: the projected
    error then has the same order of magnitude whatever the layer's width.
    """
    if feedback_scale == "auto":
        return 1.0 / np.sqrt(receiving_width)
    return float(feedback_scale)
