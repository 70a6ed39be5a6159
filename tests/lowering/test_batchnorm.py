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


def test_shift_rides_on_an_input_present_at_every_step():
    import mnc
    from mnc.lowering.batchnorm import carrier, fold_projections, population_batchnorm
    from mnc.lowering.fresh_weights import fresh_weights
    from tests.recurrent_irs import LATERAL, with_time

    ir = with_time(mnc.compile_ir("tiny"), steps=3, lateral_delay=1)
    # The delayed lateral input listed first: it is absent at step 0, so it cannot carry
    lateral = ir.projection(LATERAL)
    ir = ir.model_copy(update={"projections": [lateral, *(
        q for q in ir.projections if q.name != LATERAL)]})
    assert carrier(ir, "VISp2/3").name == "VISp4->VISp2/3"
    tensors = fresh_weights(ir)
    rng = np.random.default_rng(0)
    for name in tensors:
        if name.startswith("norms.") and not name.endswith("num_batches_tracked"):
            tensors[name] = rng.uniform(0.5, 1.5, tensors[name].shape).astype(np.float32)
        if name.startswith("convs.") and name.endswith(".bias"):
            tensors[name] = rng.normal(size=tensors[name].shape).astype(np.float32)
    folded = fold_projections(ir, tensors)
    scale, shift = population_batchnorm(tensors, "VISp2/3")
    for q in ir.projections:
        if q.target == "VISp2/3":
            raw = tensors[f"convs.{q.source.replace('/', '_')}__VISp2_3.bias"] * scale
            expected = raw + shift if q.name == "VISp4->VISp2/3" else raw
            np.testing.assert_allclose(folded[q.name].bias, expected, rtol=1e-12)
