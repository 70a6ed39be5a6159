"""A recurrent network runs the plain path unrolled in time: ``auto`` picks it, and forcing a
fast strategy onto it is refused with one message naming what runs it."""

from __future__ import annotations

import pytest
import torch

import mnc
from mnc.errors import BackendError

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    return mnc.compile("tiny-feedback", backend="torch").eval()


def test_auto_runs_the_unrolled_plain_path(model):
    assert model.ir.is_recurrent
    images = torch.rand(2, 3, model.ir.input.height, model.ir.input.width)
    with torch.inference_mode():
        assert model.dispatcher().choose(images) == "plain"
        assert torch.equal(model.set_strategy("auto")(images), model.plain_forward(images))
        features = model.features(images, ["VISp5"])["VISp5"]
    assert features.shape[1] == model.ir.dynamics.steps  # (N, T, C, H, W)


@pytest.mark.parametrize("strategy", ["merged", "sparse"])
def test_a_forced_fast_strategy_is_refused_by_name(model, strategy):
    message = (f"strategy '{strategy}' cannot run IR 'MouseNet tiny with feedback': it is "
               f"recurrent \\(3 steps, unrolled in time\\); strategies 'auto' and 'plain' run it")
    with pytest.raises(BackendError, match=message):
        model.set_strategy(strategy)
    assert model.strategy == "auto"
    with pytest.raises(BackendError, match=message):
        mnc.compile("tiny-feedback", backend="torch", strategy=strategy)
    images = torch.rand(1, 3, model.ir.input.height, model.ir.input.width)
    with pytest.raises(BackendError, match=message):  # the dispatcher asked directly
        model.dispatcher().run(images, strategy)
