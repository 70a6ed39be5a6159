"""Numbers: the folded ONNX graph against a plain, unfolded computation of the same network."""

from __future__ import annotations

import numpy as np
import pytest

import mnc
from mnc.backend import BackendOptions
from mnc_backends.onnx import OnnxBackend
from tests.backends.onnx.helpers import random_state, reference_forward, run_onnx, write_small_spec

pytestmark = [pytest.mark.onnx, pytest.mark.torch]
pytest.importorskip("torch")

TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 1e-2
"""fp16 export: max abs difference to float32 <= 1e-2 * max(1, max |float32 value|)."""


def compile_with(ir, state, outputs=(), **extra):
    return OnnxBackend().compile(ir, BackendOptions(outputs=outputs,
                                                    extra={"state_dict": state, **extra}))


@pytest.mark.parametrize("batch", [1, 7])
def test_logits_and_every_population_match_reference(small_ir, batch):
    state = random_state(small_ir)
    populations = tuple(small_ir.population_names()[1:])
    model = compile_with(small_ir, state, populations)
    images = np.random.default_rng(batch).normal(size=(batch, 3, 32, 32)).astype(np.float32)
    expected = reference_forward(small_ir, state, images)
    got = run_onnx(model, images)
    assert set(got) == {"logits", *populations}
    for name, value in got.items():
        np.testing.assert_allclose(value, expected[name], rtol=0, atol=TOLERANCE, err_msg=name)
    assert np.abs(expected["logits"]).max() > 0.05  # a meaningful comparison, not all zeros


def test_batchnorm_statistics_change_the_output(small_ir):
    state = random_state(small_ir)
    images = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    before = run_onnx(compile_with(small_ir, state), images)["logits"]
    state["norms.VISp4.running_mean"] = state["norms.VISp4.running_mean"] + 0.5
    after = run_onnx(compile_with(small_ir, state), images)["logits"]
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, reference_forward(small_ir, state, images)["logits"],
                               atol=TOLERANCE)


def test_uneven_pooling_matches_adaptive_average_pooling(tmp_path):
    ir = mnc.compile_ir(write_small_spec(tmp_path, readout={"classes": 10, "pool_size": 3}))
    state = random_state(ir, seed=3)
    model = compile_with(ir, state)
    assert "MatMul" in {node.op_type for node in model.graph.node}
    images = np.random.default_rng(3).normal(size=(3, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(model, images)["logits"],
                               reference_forward(ir, state, images)["logits"], atol=TOLERANCE)


def test_float16_export_keeps_stated_tolerance(small_ir):
    state = random_state(small_ir)
    full = compile_with(small_ir, state, ("VISp5",))
    half = compile_with(small_ir, state, ("VISp5",), fp16=True)
    assert half.ByteSize() < 0.6 * full.ByteSize()
    images = np.random.default_rng(5).normal(size=(4, 3, 32, 32)).astype(np.float32)
    expected, got = run_onnx(full, images), run_onnx(half, images)
    for name in ("logits", "VISp5"):
        assert got[name].dtype == np.float32
        scale = max(1.0, float(np.abs(expected[name]).max()))
        assert np.abs(got[name] - expected[name]).max() <= FLOAT16_TOLERANCE * scale, name
