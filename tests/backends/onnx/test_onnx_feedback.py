"""The shipped feedback networks in ONNX: the same outputs as the torch module, per step."""

from __future__ import annotations

import numpy as np
import pytest

import mnc
from mnc.backend import BackendOptions
from mnc_backends.onnx import OnnxBackend
from tests.backends.onnx.helpers import run_onnx
from tests.backends.onnx.test_onnx_parity import randomise_batchnorm

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.onnx, pytest.mark.torch]

TOLERANCE = 1e-4
"""Max abs difference <= 1e-4 * max(1, max |torch value|): untrained feedback grows large."""


@pytest.mark.parametrize("spec", ["tiny-feedback", pytest.param("feedback",
                                                                 marks=pytest.mark.slow)])
def test_feedback_network_matches_torch(spec):
    ir = mnc.compile_ir(spec)
    assert ir.is_recurrent and any(q.upsample > 1 and q.delay for q in ir.projections)
    model = mnc.compile(ir, backend="torch").eval()
    randomise_batchnorm(model, seed=len(ir.projections))
    state = {name: value.detach().numpy() for name, value in model.state_dict().items()}
    populations = ("VISp2/3", "VISp5", *ir.readout.populations)
    exported = OnnxBackend().compile(ir, BackendOptions(outputs=populations,
                                                        extra={"state_dict": state}))
    images = torch.randn(1, ir.input.channels, ir.input.height, ir.input.width,
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = {name: value.numpy() for name, value
                    in model.features(images, list(dict.fromkeys(populations))).items()}
        expected["logits"] = model(images).numpy()
    got = run_onnx(exported, images.numpy())
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        scale = max(1.0, float(np.abs(value).max()))
        assert float(np.abs(got[name] - value).max()) <= TOLERANCE * scale, name
    steps = expected["VISp2/3"]
    assert steps.shape[1] == ir.dynamics.steps
    assert float(np.abs(steps[:, 1] - steps[:, 0]).max()) > 1e-3  # feedback arrived
