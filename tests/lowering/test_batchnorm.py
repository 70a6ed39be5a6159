"""The BatchNorm folding rule: BN(z) == z * scale + shift in inference."""

from __future__ import annotations

import numpy as np

from mnc.lowering.batchnorm import fold_batchnorm


def test_fold_reproduces_inference_batchnorm():
    rng = np.random.default_rng(3)
    gamma, beta, mean = rng.normal(size=(3, 5))
    var = rng.uniform(0.1, 2.0, 5)
    z = rng.normal(size=(4, 5))
    scale, shift = fold_batchnorm(gamma, beta, mean, var, eps=1e-3)
    assert scale.dtype == shift.dtype == np.float64
    np.testing.assert_allclose(z * scale + shift, gamma * (z - mean) / np.sqrt(var + 1e-3) + beta,
                               rtol=1e-12, atol=1e-12)
