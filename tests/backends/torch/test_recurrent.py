"""Recurrent networks unrolled in time: the compiled module against the reference semantics,
per-step features, input shapes, strategies, and saved files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mnc
from mnc.errors import BackendError
from mnc.ir import IR, Dynamics
from mnc_backends.torch import MaskedConv2d, MouseNet
from mnc_backends.torch.reference import ReferenceMouseNet
from mnc_backends.torch.weights_io import model_payload, save_model
from tests.recurrent_irs import inputs_for, randomised, with_recurrence

pytestmark = pytest.mark.torch

TOLERANCE = 1e-4


def _pair(ir: IR) -> tuple[MouseNet, ReferenceMouseNet]:
    model = randomised(ir)
    reference = ReferenceMouseNet(ir)
    reference.load_state_dict(model.state_dict())
    return model, reference


@pytest.mark.parametrize("which", ["still", "clip", "tiny-feedback"])
def test_unrolled_network_equals_the_reference_in_training_and_eval(tiny_ir, which) -> None:
    ir = (mnc.compile_ir(which) if which == "tiny-feedback" else
          with_recurrence(tiny_ir, steps=3, clip=which == "clip", readout_steps=(1, 2)))
    model, reference = _pair(ir)
    images = inputs_for(ir)
    torch.testing.assert_close(model.train()(images), reference.train()(images),
                               rtol=0, atol=TOLERANCE)
    for name, buffer in reference.state_dict().items():  # each step's statistics moved once
        torch.testing.assert_close(model.state_dict()[name], buffer, rtol=1e-4, atol=1e-5)
    norm = model.norms["VISp4"]
    assert int(norm.num_batches_tracked) == 1  # one batch, every step's row updated once
    assert norm.running_mean.shape[0] == ir.dynamics.steps
    assert f"time: {ir.dynamics.steps} steps" in repr(model)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(images), reference.eval()(images),
                                   rtol=0, atol=TOLERANCE)
        features = model.features(images)
        expected_features = reference.populations(images)
    for name, activity in expected_features.items():
        scale = max(1.0, float(activity.abs().max()))
        torch.testing.assert_close(features[name], activity, rtol=0, atol=TOLERANCE * scale)


def test_gradients_through_time_equal_the_reference(tiny_ir) -> None:
    """In float64: float32 gradients through the loops carry rounding of about 1e-3 of
    their size (both implementations alike), which would hide a real difference."""
    ir = with_recurrence(tiny_ir, steps=3, readout_steps=(1, 2))
    model, reference = (network.double().train() for network in _pair(ir))
    images = inputs_for(ir, batch=2).double()
    model(images).square().sum().backward()
    reference(images).square().sum().backward()
    for key, conv in model.convs.items():
        torch.testing.assert_close(conv.weight.grad, reference.convs[key].weight.grad,
                                   rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(conv.bias.grad, reference.convs[key].bias.grad,
                                   rtol=1e-9, atol=1e-12)


def test_features_are_per_step_and_the_readout_averages_its_steps(tiny_ir) -> None:
    ir = with_recurrence(tiny_ir, steps=3, readout_steps=(1, 2))
    model = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.no_grad():
        features = model.features(images, [*ir.readout.populations, "input"])
        logits = model(images)
    for name in ("VISp5", "VISpor5"):
        population = ir.population(name)
        assert features[name].shape == (2, 3, population.channels, population.height,
                                        population.width)
    assert torch.equal(features["input"], images[:, None].expand(2, 3, *images.shape[1:]))
    pooled = torch.stack([
        torch.cat([F.adaptive_avg_pool2d(features[name][:, step], ir.readout.pool_size)
                   .flatten(1) for name in ir.readout.populations], dim=1)
        for step in (1, 2)])
    torch.testing.assert_close(logits, model.classifier(pooled.mean(0)), rtol=0, atol=1e-5)
    # the steps differ: feedback and lateral input arrive after step 0
    assert not torch.allclose(features["VISp5"][:, 0], features["VISp5"][:, 2])


def test_the_readout_reads_the_last_step_by_default(tiny_ir) -> None:
    ir = with_recurrence(tiny_ir, steps=2, readout_steps=None)
    model = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.no_grad():
        last = {name: activity[:, -1] for name, activity in
                model.features(images, ir.readout.populations).items()}
        torch.testing.assert_close(model(images), model.readout(last), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("clip", "shape", "expected"), [
    (False, (2, 3, 3, 32, 32), r"one still image shown at all 3 steps: expected input of "
                               r"shape \(N, C, H, W\) = \(N, 3, 32, 32\), got \(2, 3, 3, 32, 32\)"),
    (True, (2, 3, 32, 32), r"a clip of 3 frames \(one per step\): expected input of shape "
                           r"\(N, T, C, H, W\) = \(N, 3, 3, 32, 32\), got \(2, 3, 32, 32\)"),
    (True, (2, 4, 3, 32, 32), r"\(N, 3, 3, 32, 32\), got \(2, 4, 3, 32, 32\)"),
])
def test_a_wrong_input_shape_names_the_expected_one(tiny_ir, clip, shape, expected) -> None:
    model = MouseNet(with_recurrence(tiny_ir, steps=3, clip=clip))
    with pytest.raises(BackendError, match=expected):
        model(torch.zeros(shape))
    with pytest.raises(BackendError, match=expected):
        model.features(torch.zeros(shape), ["VISp4"])


@pytest.mark.parametrize("strategy", ["auto", "plain", "merged"])
def test_the_strategies_that_accept_it_run_the_unrolled_network(tiny_ir, strategy) -> None:
    ir = with_recurrence(tiny_ir, steps=2, readout_steps=None)
    model = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.no_grad():
        expected = model.plain_forward(images)
        model.set_strategy(strategy)
        torch.testing.assert_close(model(images), expected, rtol=0,
                                   atol=0 if strategy == "plain" else TOLERANCE)
        assert model.features(images, ["VISp4"])["VISp4"].dim() == 5


def test_upsampling_repeats_each_pixel_before_padding() -> None:
    generator = torch.Generator().manual_seed(0)
    conv = MaskedConv2d(2, 3, 3, stride=1, padding_lrtb=(1, 1, 0, 2), upsample=2)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
    source = torch.randn(1, 2, 4, 5, generator=generator)
    repeated = F.interpolate(source, scale_factor=2, mode="nearest")
    expected = F.conv2d(F.pad(repeated, (1, 1, 0, 2)), conv.weight, conv.bias)
    torch.testing.assert_close(conv(source), expected, rtol=0, atol=1e-6)
    assert conv(source).shape == (1, 3, 8, 10)
    assert "upsample=2" in conv.extra_repr()


def test_a_saved_recurrent_model_loads_with_its_dynamics(tiny_ir, tmp_path: Path) -> None:
    ir = with_recurrence(tiny_ir, steps=3, clip=True, readout_steps=(0, 2))
    model = randomised(ir).eval()
    path = tmp_path / "recurrent.pt"
    save_model(model, path)
    loaded = mnc.load(path).eval()
    assert loaded.ir == ir and loaded.ir.dynamics == Dynamics(steps=3, input="clip",
                                                              readout_steps=(0, 2))
    assert loaded.ir.projection("VISl2/3->VISp4").upsample == 2
    images = inputs_for(ir)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


def test_a_file_written_before_the_time_fields_still_loads(tiny_ir, tmp_path: Path) -> None:
    """Files of the previous version hold IR JSON without dynamics, delay and upsample."""
    model = randomised(tiny_ir).eval()
    payload = model_payload(model)
    old = json.loads(payload["ir_json"])
    del old["dynamics"]
    for projection in old["projections"]:
        del projection["delay"], projection["upsample"]
    payload["ir_json"] = json.dumps(old)
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    loaded = mnc.load(path).eval()
    assert loaded.ir.content_hash == tiny_ir.content_hash and not loaded.recurrent
    images = inputs_for(tiny_ir)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


def test_graph_captures_hold_the_unrolled_network(tiny_ir) -> None:
    """fx and torch.export trace every step (the input check is skipped on proxies)."""
    ir = with_recurrence(tiny_ir, steps=2, clip=True, readout_steps=(0, 1))
    model = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.no_grad():
        expected = model.plain_forward(images)  # what graph captures hold
        traced = torch.fx.symbolic_trace(model)
        torch.testing.assert_close(traced(images), expected, rtol=0, atol=1e-6)
        exported = torch.export.export(model, (images,)).module()
        torch.testing.assert_close(exported(images), expected, rtol=0, atol=1e-6)
    relus = [node for node in traced.graph.nodes if node.target == "populations.VISp2_3.relu"]
    assert len(relus) == 2  # one per step


def test_the_plain_path_computes_what_the_time_schedule_lists(tiny_ir) -> None:
    """Each population's module runs once per computation of the schedule: with the readout
    at step 1 of 3, nothing runs at step 2, and ``features`` of VISp4 runs no higher area.
    The logits are the reference's, which runs every population at every step."""
    from collections import Counter

    from mnc.lowering.schedule import time_schedule

    ir = with_recurrence(tiny_ir, steps=3, readout_steps=(1, 1))
    model, reference = _pair(ir)
    model.eval().set_strategy("plain")  # (hooks observing a fast strategy see whole steps)
    reference.eval()
    calls: Counter[str] = Counter()
    handles = [model.population_module(name).register_forward_hook(
        lambda module, inputs, output: calls.update([module.population]))
        for name in ir.population_names()[1:]]
    images = inputs_for(ir)
    try:
        with torch.no_grad():
            logits = model(images)
            expected = Counter(item.population for item in time_schedule(ir).computations)
            assert calls == expected and max(calls.values()) == 2  # steps 0 and 1
            torch.testing.assert_close(logits, reference(images), rtol=0, atol=TOLERANCE)
            calls.clear()
            model.features(images, ["VISp4"])
    finally:
        for handle in handles:
            handle.remove()
    wanted = time_schedule(ir, ["VISp4"], range(3)).computations
    assert calls == Counter(item.population for item in wanted)
    assert calls["VISl2/3"] == 2  # read back by VISp4 a step later (steps 0 and 1)
    assert "VISpor5" not in calls and "VISal5" not in calls
