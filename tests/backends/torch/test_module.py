"""MouseNet follows the IR: shapes, execution plan, reference semantics, mask modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import mnc
from mnc.analysis.cost import network_cost
from mnc.errors import BackendError
from mnc.masks import projection_mask
from mnc_backends.torch import LearnableMaskConv2d, MouseNet
from mnc_backends.torch.names import population_key, projection_key
from mnc_backends.torch.reference import ReferenceMouseNet

pytestmark = pytest.mark.torch

VARIANTS = sorted((Path(__file__).resolve().parents[3] / "specs" / "variants").glob("*.yaml"))


def _images(ir: mnc.ir.IR, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """(N, C, H, W), or (N, T, C, H, W) for an IR that takes clips."""
    generator = torch.Generator().manual_seed(seed)
    frames = (ir.dynamics.steps,) if ir.dynamics.input == "clip" else ()
    return torch.randn(batch, *frames, ir.input.channels, ir.input.height, ir.input.width,
                       generator=generator)


def _check_shapes(ir: mnc.ir.IR) -> None:
    model = MouseNet(ir).eval()
    images = _images(ir)
    if ir.is_recurrent and network_cost(ir).dense_macs_total > 1e9:
        # the unrolled plain path is dense: shapes only, without the arithmetic
        model, images = model.to("meta"), images.to("meta")
    with torch.no_grad():
        assert model(images).shape == (2, ir.readout.classes)
        features = model.features(images)
    assert list(features) == ir.population_names()
    steps = (ir.dynamics.steps,) if ir.is_recurrent else ()  # recurrent: (N, T, C, H, W)
    for population in ir.populations:
        expected = (2, *steps, population.channels, population.height, population.width)
        assert features[population.name].shape == expected, population.name


def test_default_spec_logits_and_features_follow_the_ir(default_ir: mnc.ir.IR) -> None:
    assert (default_ir.input.height, default_ir.readout.classes) == (64, 1000)
    _check_shapes(default_ir)


@pytest.mark.parametrize("mode", ["gaussian", "none", "expected", "learnable"])
def test_tiny_spec_shapes_in_every_mask_mode(tiny_ir, ir_editor, mode: str) -> None:
    _check_shapes(ir_editor(tiny_ir, mode=mode))


@pytest.mark.parametrize("spec", VARIANTS, ids=[path.stem for path in VARIANTS])
def test_spec_variants_shapes(spec: Path) -> None:
    _check_shapes(mnc.compile_ir(spec))


def test_features_run_only_the_ancestors_of_the_requested_populations(default_ir) -> None:
    model = MouseNet(default_ir).eval()
    called: list[str] = []
    for key, conv in model.convs.items():
        conv.register_forward_hook(lambda module, args, output, key=key: called.append(key))
    with torch.no_grad():
        acts = model.features(_images(default_ir, batch=1), ["VISp4"])
    assert called == ["input__LGNd", "LGNd__VISp4"]
    assert list(acts) == ["VISp4"]

    called.clear()
    with torch.no_grad():
        acts = model.features(_images(default_ir, batch=1), ["VISp5", "VISl2/3"])
    assert list(acts) == ["VISp5", "VISl2/3"]  # IR names, in the order asked
    needed = {"input", "LGNd", "VISp4", "VISp2/3", "VISp5", "VISl4", "VISl2/3"}
    expected = {projection_key(q.source, q.target) for q in default_ir.projections
                if q.target in needed}
    assert set(called) == expected
    assert not any("VISpor" in key or "VISl5" in key for key in called)


def test_features_equal_the_full_run_and_reject_unknown_names(tiny_ir) -> None:
    model = MouseNet(tiny_ir).eval()
    images = _images(tiny_ir)
    with torch.no_grad():
        everything = model.features(images)
        some = model.features(images, ["VISpor5", "input"])
    torch.testing.assert_close(some["VISpor5"], everything["VISpor5"], rtol=0, atol=0)
    assert some["input"] is images
    with pytest.raises(BackendError, match="unknown population 'VISx4'.*VISp4"):
        model.features(images, ["VISx4"])


def test_default_spec_equals_reference_semantics_in_eval_mode(default_ir) -> None:
    model = MouseNet(default_ir).eval()
    reference = ReferenceMouseNet(default_ir).eval()
    reference.load_state_dict(model.state_dict())
    images = _images(default_ir)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images), rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["gaussian", "none", "expected"])
def test_training_mode_equals_reference_semantics(tiny_ir, ir_editor, mode: str) -> None:
    ir = ir_editor(tiny_ir, mode=mode)
    model = MouseNet(ir).train()
    reference = ReferenceMouseNet(ir).train()
    reference.load_state_dict(model.state_dict())
    images = _images(ir, batch=4)
    out, expected = model(images), reference(images)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    out.square().sum().backward()
    expected.square().sum().backward()
    key = projection_key(ir.projections[3].source, ir.projections[3].target)
    torch.testing.assert_close(model.convs[key].weight.grad, reference.convs[key].weight.grad,
                               rtol=1e-4, atol=1e-5)
    for name, buffer in reference.state_dict().items():  # BN running statistics moved alike
        torch.testing.assert_close(model.state_dict()[name], buffer, rtol=1e-5, atol=1e-6)


def test_masks_are_mnc_masks_tap_for_tap(default_ir) -> None:
    model = MouseNet(default_ir)
    for projection in default_ir.projections:
        mask = model.conv(projection.name).mask
        assert np.array_equal(mask.numpy(), projection_mask(default_ir, projection))


def test_state_dict_names_follow_the_contract(default_ir) -> None:
    names = set(MouseNet(default_ir).state_dict())
    assert {"convs.VISp2_3__VISl4.weight", "convs.VISp2_3__VISl4.bias",
            "convs.VISp2_3__VISl4.mask", "norms.VISp2_3.running_mean",
            "norms.VISp2_3.num_batches_tracked", "classifier.weight",
            "classifier.bias"} <= names
    assert len([n for n in names if n.startswith("convs.")]) == 3 * len(default_ir.projections)
    assert all(n.startswith(("convs.", "norms.", "classifier.")) for n in names)


def test_effective_weight_is_weight_times_mask(tiny_ir) -> None:
    model = MouseNet(tiny_ir)
    conv = model.conv("VISp4->VISl4")
    assert conv is model.convs["VISp4__VISl4"]
    torch.testing.assert_close(model.effective_weight("VISp4->VISl4"), conv.weight * conv.mask)
    with pytest.raises(BackendError, match="unknown projection"):
        model.effective_weight("VISp4->VISx4")


def test_learnable_profile_starts_at_the_ir_profile_and_trains(tiny_ir, ir_editor) -> None:
    ir = ir_editor(tiny_ir, mode="learnable")
    model = MouseNet(ir)
    projection = ir.projections[2]
    conv = model.conv(projection.name)
    assert isinstance(conv, LearnableMaskConv2d)
    expected = projection_mask(ir, projection)
    np.testing.assert_allclose(conv.effective_mask().detach().numpy(), expected, rtol=1e-5)
    key = projection_key(projection.source, projection.target)
    assert {f"convs.{key}.log_peak", f"convs.{key}.log_sigma"} <= set(model.state_dict())
    model(_images(ir, batch=4)).square().sum().backward()
    assert conv.log_sigma.grad is not None and conv.log_sigma.grad.abs() > 0


def test_input_population_has_no_norm(default_ir) -> None:
    model = MouseNet(default_ir)
    assert "input" not in model.norms
    assert set(model.norms) == {population_key(p.name) for p in default_ir.populations[1:]}
