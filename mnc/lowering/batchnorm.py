"""Inference-mode BatchNorm as an affine map, the rule every folding backend applies.

In inference ``BN(z) = gamma (z - running_mean) / sqrt(running_var + eps) + beta``, which is
``z * scale + shift`` with ``scale = gamma / sqrt(running_var + eps)`` and
``shift = beta - scale * running_mean``. Folded into the convolutions feeding a population,
``scale`` multiplies every weight and bias of each output channel and ``shift`` is added once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

BATCH_NORM_EPS = 1e-5
"""torch.nn.BatchNorm2d's default eps, which the torch backend keeps."""


def fold_batchnorm(gamma: ArrayLike, beta: ArrayLike, running_mean: ArrayLike,
                   running_var: ArrayLike, eps: float = BATCH_NORM_EPS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) per channel, in float64, with ``BN(z) == z * scale + shift``."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(running_var, np.float64) + eps)
    return scale, np.asarray(beta, np.float64) - scale * np.asarray(running_mean, np.float64)
