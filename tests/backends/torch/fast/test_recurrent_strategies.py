"""A recurrent network under the merged strategy: per step, each merged group over its source's
activity ``delay`` steps before, equal to the unrolled plain path (logits, every step's
features, BatchNorm statistics and gradients in training); ``auto`` picks it on the CPU in
training (and the sparse kernel in inference, where it is built), and forcing the sparse
kernel onto a projection that both upsamples and strides is refused with one message naming
what runs it."""

from __future__ import annotations

import copy

import pytest
import torch

import mnc
from mnc.ir import IR
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.dispatch import sparse_unsupported
from tests.recurrent_irs import FEEDBACK, inputs_for, randomised, tiny_recurrent, with_recurrence

pytestmark = pytest.mark.torch

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    return mnc.compile("tiny-feedback", backend="torch").eval()


def _ir(tiny_ir: IR, which: str) -> IR:
    """tiny-feedback, or the hand-built IR (a lateral loop, upsampled feedback with delays of
    one and two steps, a delayed forward projection) with still or clip input."""
    if which == "tiny-feedback":
        return mnc.compile_ir(which)
    return with_recurrence(tiny_ir, steps=3, clip=which == "clip", readout_steps=(1, 2))


@pytest.mark.parametrize("which", ["tiny-feedback", "still", "clip"])
def test_merged_equals_the_unrolled_plain_path_in_eval(tiny_ir, which) -> None:
    """Nonzero biases and BatchNorm shifts (``randomised``): an absent delayed input adding
    its bias or shift at the early steps would show."""
    ir = _ir(tiny_ir, which)
    network = randomised(ir).eval()
    images = inputs_for(ir)
    names = network.population_names()
    with torch.no_grad():
        expected = network.plain_forward(images)
        expected_features = network.plain_features(images, names)
        network.set_strategy("merged")
        logits = network(images)
        features = network.features(images)
        part = network.features(images, ["VISp4", "input"])
    torch.testing.assert_close(logits, expected, rtol=0, atol=TOLERANCE)
    for name, activity in expected_features.items():
        assert features[name].shape == activity.shape  # (N, T, C, H, W)
        assert activity.shape[:2] == (2, ir.dynamics.steps)
        scale = max(1.0, float(activity.abs().max()))
        torch.testing.assert_close(features[name], activity, rtol=0, atol=TOLERANCE * scale)
    torch.testing.assert_close(part["VISp4"], expected_features["VISp4"], rtol=0,
                               atol=TOLERANCE * max(1.0, float(part["VISp4"].abs().max())))
    assert torch.equal(part["input"], expected_features["input"])


def test_merged_trains_as_the_unrolled_plain_path(tiny_ir) -> None:
    """In float64 (see test_recurrent's gradient test): logits, each step's running
    statistics, and the gradients of every weight."""
    ir = _ir(tiny_ir, "still")
    plain = randomised(ir).double().train()
    merged = copy.deepcopy(plain).set_strategy("merged")
    images = inputs_for(ir).double()
    expected, logits = plain.plain_forward(images), merged(images)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-9)
    expected.square().sum().backward()
    logits.square().sum().backward()
    buffers = dict(merged.named_buffers())
    for name, buffer in plain.named_buffers():
        torch.testing.assert_close(buffers[name], buffer, rtol=0, atol=1e-9)
    assert int(merged.norms["VISp4"].num_batches_tracked) == 1  # one batch, a row per step
    for key, conv in plain.convs.items():
        gradient = merged.convs[key].weight.grad
        assert gradient is not None and conv.weight.grad is not None
        scale = float(conv.weight.grad.abs().max())
        torch.testing.assert_close(gradient, conv.weight.grad, rtol=0, atol=1e-9 * scale)


def test_auto_runs_sparse_in_inference_merged_in_training(model) -> None:
    images = torch.rand(2, 3, model.ir.input.height, model.ir.input.width)
    dispatcher = model.dispatcher()
    inference = "sparse" if native.available() else "merged"
    with torch.inference_mode():
        assert dispatcher.choose(images, training=False) == inference
        assert dispatcher.choose(images, "plain", training=False) == "plain"
        expected = model.plain_forward(images)
        torch.testing.assert_close(model.set_strategy("auto")(images), expected, rtol=0,
                                   atol=TOLERANCE)
        torch.testing.assert_close(model.set_strategy("merged")(images), expected, rtol=0,
                                   atol=TOLERANCE)
        assert model.features(images, ["VISp5"])["VISp5"].shape[1] == model.ir.dynamics.steps
    model.set_strategy("auto")
    assert dispatcher.choose(images, training=True) == "merged"
    merged = mnc.compile("tiny-feedback", backend="torch", strategy="merged")
    assert merged.strategy == "merged"


def test_sparse_refuses_only_a_projection_that_upsamples_and_strides() -> None:
    ir = tiny_recurrent()
    assert sparse_unsupported(ir) is None
    strided = [q.model_copy(update={"stride": 2}) if q.name == FEEDBACK else q
               for q in ir.projections]  # (in memory: no invariant check)
    reason = sparse_unsupported(ir.model_copy(update={"projections": strided}))
    assert reason == f"projection {FEEDBACK!r} both upsamples and strides its source"


@pytest.mark.parametrize("readout_steps", [(1, 1), None], ids=["early", "last"])
def test_merged_computes_what_the_schedule_keeps_as_plain_does(tiny_ir, readout_steps) -> None:
    """A readout before the last step (nothing after it runs) or at the last step only (the
    higher areas skip the steps no feedback reads them at)."""
    ir = with_recurrence(tiny_ir, steps=3, readout_steps=readout_steps)
    network = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.no_grad():
        expected = network.plain_forward(images)
        part = network.plain_features(images, ["VISp4"])["VISp4"]
        network.set_strategy("merged")
        torch.testing.assert_close(network(images), expected, rtol=0, atol=TOLERANCE)
        torch.testing.assert_close(network.features(images, ["VISp4"])["VISp4"], part,
                                   rtol=0, atol=TOLERANCE * max(1.0, float(part.abs().max())))
