"""Untrained networks: the torch module and the ONNX export of one spec are the same network."""

from __future__ import annotations

import numpy as np
import pytest

import mnc
from mnc.backend import BackendOptions
from mnc_backends.onnx import OnnxBackend
from tests.backends.onnx.helpers import run_onnx

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.onnx


@pytest.mark.parametrize("spec", ["specs/variants/tiny.yaml", "specs/mouse.yaml"])
def test_untrained_torch_and_onnx_models_agree(spec):
    ir = mnc.compile_ir(spec)
    images = np.random.default_rng(0).standard_normal(
        (3, ir.input.channels, ir.input.height, ir.input.width)).astype(np.float32)
    model = mnc.compile(ir, backend="torch").eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    exported = OnnxBackend().compile(ir, BackendOptions())
    found = run_onnx(exported, images)["logits"]
    assert np.abs(expected).max() > 1e-3  # a network that computes something
    np.testing.assert_allclose(found, expected, atol=1e-4, rtol=0)
