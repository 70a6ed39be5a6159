"""A batch of no images gives empty outputs under every strategy, in training and evaluation
mode, as the plain path does (not an error from deep inside a fast strategy)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import mnc  # noqa: E402
from mnc_backends.torch.module import MouseNet  # noqa: E402
from tests.conftest import TINY_SPEC  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def model() -> MouseNet:
    return MouseNet(mnc.compile_ir(TINY_SPEC))


@pytest.mark.parametrize("strategy", ["auto", "plain", "merged", "sparse"])
@pytest.mark.parametrize("training", [True, False])
def test_an_empty_batch_gives_empty_outputs(model, strategy, training):
    model.train(training)
    model.set_strategy(strategy)
    try:
        empty = torch.zeros(0, model.ir.input.channels, model.ir.input.height,
                            model.ir.input.width)
        with torch.no_grad():
            logits = model(empty)
            features = model.features(empty, ["VISp4"])
    finally:
        model.set_strategy("auto")
    assert tuple(logits.shape) == (0, model.ir.readout.classes)
    assert features["VISp4"].shape[0] == 0
