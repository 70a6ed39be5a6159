"""Hooks on a recurrent network's populations: once per step; StepActivity collects them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import mnc  # noqa: E402
from mnc.errors import BackendError  # noqa: E402
from mnc_backends.torch.step_hooks import StepActivity  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

MICRO_FEEDBACK = ROOT / "tests" / "data" / "micro-feedback.yaml"


@pytest.fixture(scope="module")
def model():
    return mnc.compile(MICRO_FEEDBACK, backend="torch").eval()


def test_a_population_hook_fires_once_per_step(model):
    calls = []
    handle = model.population_module("VISp2/3").register_forward_hook(
        lambda module, inputs, output: calls.append(output.shape)
    )
    try:
        with torch.no_grad():
            model(torch.rand(2, 3, 32, 32))
    finally:
        handle.remove()
    assert len(calls) == model.ir.dynamics.steps


def test_step_activity_gives_every_step_and_the_readout_average(model):
    names = ["VISp2/3", "VISl5"]
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.features(images, names)
        with StepActivity(model, names) as recorded:
            model(torch.rand(3, 3, 32, 32))  # an earlier call: only the last is kept
            logits = model(images)
        torch.testing.assert_close(logits, model(images), rtol=0, atol=1e-5)
    readout = model.ir.dynamics.readout_range
    for name in names:
        torch.testing.assert_close(recorded.stacked[name], expected[name], rtol=0, atol=1e-6)
        average = expected[name][:, readout.start : readout.stop].mean(dim=1)
        torch.testing.assert_close(recorded.readout[name], average, rtol=0, atol=1e-6)
    assert not model.population_module("VISp2/3")._forward_hooks  # removed on exit


def test_step_activity_says_when_a_population_did_not_run_every_step(model):
    with StepActivity(model, ["VISp4"]) as recorded:
        pass
    with pytest.raises(BackendError, match="recorded at 0 of 3 steps"):
        recorded.stacked  # noqa: B018
