"""Parity with the torch backend: same weights, same outputs, for every shipped spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mnc
from mnc.backend import BackendOptions
from mnc.errors import SpecError
from mnc.ir.serialize import ir_to_json
from mnc_backends.onnx import OnnxBackend
from tests.backends.onnx.helpers import run_onnx
from tests.conftest import ALL_SPECS, ROOT

torch = pytest.importorskip("torch")
pytest.importorskip("mnc_backends.torch.backend", reason="the torch backend is not installed")
pytestmark = [pytest.mark.onnx, pytest.mark.torch]

TOLERANCE = 1e-4


def randomise_batchnorm(model, seed: int) -> None:
    """Non-trivial running statistics and affine terms, so folding them is really tested."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in model.norms.values():
            channels = norm.num_features
            norm.weight.copy_(0.5 + torch.rand(channels, generator=generator))
            norm.bias.copy_(0.4 * torch.rand(channels, generator=generator) - 0.2)
            shape = norm.running_mean.shape  # (steps, C) in a network of several steps
            norm.running_mean.copy_(0.6 * torch.rand(shape, generator=generator) - 0.3)
            norm.running_var.copy_(0.3 + 1.7 * torch.rand(shape, generator=generator))


@pytest.mark.slow
@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda path: str(path.relative_to(ROOT)))
def test_onnxruntime_matches_torch(spec: Path, tmp_path: Path):
    try:
        ir = mnc.compile_ir(spec)
    except SpecError:
        pytest.skip(f"{spec.name} is a fragment, not a complete spec")
    if ir.is_recurrent:
        pytest.skip("recurrent: per-step parity in tests/backends/onnx/test_onnx_feedback.py")
    model = mnc.compile(ir, backend="torch").eval()
    randomise_batchnorm(model, seed=len(ir.projections))
    weights = tmp_path / "weights.pt"
    torch.save({"format": "mnc.torch-model", "format_version": 1, "mnc_version": mnc.__version__,
                "content_hash": ir.content_hash, "ir_json": ir_to_json(ir),
                "state_dict": {name: value.detach().cpu()
                               for name, value in model.state_dict().items()}}, weights)
    populations = ir.population_names()[1:]
    exported = OnnxBackend().compile(ir, BackendOptions(weights=weights,
                                                        outputs=("logits", *populations)))
    for batch in (1, 7):
        images = torch.randn(batch, ir.input.channels, ir.input.height, ir.input.width,
                             generator=torch.Generator().manual_seed(batch))
        # The reference semantics (one masked convolution per projection): the fast
        # strategies are held to it by their own tests, with a tolerance relative to each
        # population's size.
        with torch.no_grad():
            expected = {name: value.numpy()
                        for name, value in model.plain_features(images, populations).items()}
            expected["logits"] = model.plain_forward(images).numpy()
        got = run_onnx(exported, images.numpy())
        assert set(got) == set(expected)
        for name, value in expected.items():
            difference = float(np.abs(got[name] - value).max())
            assert difference <= TOLERANCE, f"{spec.name} batch {batch} {name}: {difference:.2e}"
        assert float(np.abs(expected["logits"]).max()) > 1e-3
