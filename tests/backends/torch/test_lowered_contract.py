"""The torch module against the lowered weights format and fresh weights of ``mnc.lowering``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnc.errors import UserFileError
from mnc.lowering.fresh_weights import fresh_weights
from mnc.lowering.weights_format import payload_schema
from mnc_backends.torch import MouseNet
from mnc_backends.torch.training.model import ir_of, load_state
from mnc_backends.torch.weights_io import model_payload

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("mode", ["gaussian", "none", "expected", "learnable"])
def test_state_dict_is_the_schema_and_starts_at_the_fresh_weights(tiny_ir, ir_editor, mode):
    ir = ir_editor(tiny_ir, mode=mode)
    state = MouseNet(ir).state_dict()
    schema = payload_schema(ir)
    assert list(state) == list(schema)
    fresh = fresh_weights(ir)
    for name, tensor in state.items():
        assert tuple(tensor.shape) == schema[name].shape, name
        assert str(tensor.dtype).removeprefix("torch.") == schema[name].dtype, name
        np.testing.assert_allclose(tensor.numpy(), fresh[name], rtol=1e-6, atol=1e-7,
                                   err_msg=name)


def test_wrapped_names_load_into_the_module(tiny_ir):
    source = MouseNet(tiny_ir)
    with torch.no_grad():
        source.classifier.bias.fill_(0.25)
    state = {f"module._orig_mod.{name}": tensor for name, tensor in source.state_dict().items()}
    target = MouseNet(tiny_ir)
    load_state(target, state, "run/last.pt")
    assert torch.equal(target.classifier.bias, source.classifier.bias)


def test_training_reader_checks_the_files_content_hash(tiny_ir):
    payload = model_payload(MouseNet(tiny_ir))
    assert ir_of(payload, "run/last.pt") == tiny_ir
    with pytest.raises(UserFileError, match="run/last.pt: content_hash 000000000000 does not"):
        ir_of({**payload, "content_hash": "0" * 64}, "run/last.pt")


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_torch_fast_path_folds_batchnorm_by_the_lowered_rule(tiny_ir, eps):
    """The fast strategies' folded projections (``mnc.lowering.batchnorm.fold_projections``
    over the module's tensors) equal convolution then eval BatchNorm, whatever the module's
    own eps (a swapped-in BatchNorm may have another)."""
    from mnc_backends.torch.fast.bench import randomise_statistics
    from mnc_backends.torch.fast.shared import folded_projections

    model = MouseNet(tiny_ir)
    randomise_statistics(model, seed=1)
    projection = tiny_ir.projection("LGNd->VISp4")  # the only input of VISp4
    norm = model.norms["VISp4"]
    norm.eps = eps
    model.eval()
    folded = folded_projections(model)[projection.name]
    source = tiny_ir.population(projection.source)
    images = torch.randn(2, source.channels, source.height, source.width, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    conv = model.conv(projection.name).double()
    with torch.no_grad():
        expected = norm.double()(conv(images))
        left, right, top, bottom = projection.padding_lrtb
        got = torch.nn.functional.conv2d(
            torch.nn.functional.pad(images, (left, right, top, bottom)),
            torch.from_numpy(folded.weight), torch.from_numpy(folded.bias), projection.stride)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("kernel", "peak", "sigma"), [(5, 0.3, 1.2), (7, 2.5, 0.8), (1, 1.0, 3.0)])
def test_every_gaussian_profile_copy_agrees_with_mnc_masks(tiny_ir, tmp_path, kernel, peak,
                                                           sigma):
    """The torch layer's trainable profile and the emitted file's standalone copy (kept on
    purpose: emitted source needs no mnc) compute mnc.masks.gaussian_profile."""
    import importlib.util

    from mnc.masks import gaussian_profile
    from mnc_backends.torch.emit_python import emit_python
    from mnc_backends.torch.masked_conv import LearnableMaskConv2d

    expected = gaussian_profile(kernel, peak, sigma)
    layer = LearnableMaskConv2d(1, 1, kernel, peak_probability=peak, sigma_px=sigma)
    np.testing.assert_allclose(layer.effective_mask().detach().numpy()[0, 0], expected,
                               rtol=1e-6, atol=1e-7)
    path = tmp_path / "emitted_profile.py"
    path.write_text(emit_python(tiny_ir))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    np.testing.assert_array_equal(emitted.tap_probabilities(kernel, peak, sigma), expected)
