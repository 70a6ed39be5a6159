"""Every compiled MouseNet runs the ``auto`` strategy unless told otherwise; the strategy is a
run-time choice that never changes the function, the saved file or the state dict."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import mnc
from mnc.errors import BackendError
from mnc_backends.torch.fast import native
from mnc_backends.torch.module import MouseNet
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.torch


def test_compiled_model_defaults_to_auto_and_agrees_with_plain(tmp_path):
    model = mnc.compile(TINY_SPEC, backend="torch").eval()
    assert isinstance(model, MouseNet) and model.strategy == "auto"
    images = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        chosen = model.dispatcher().choose(images)
        assert chosen == ("sparse" if native.available() else "merged")
        assert torch.allclose(model(images), model.plain_forward(images), atol=1e-4)
    model.train()  # training on the CPU: the kept taps with the kernel, else merged
    assert model.dispatcher().choose(images) == chosen


def test_strategy_option_is_set_and_saved_models_reload_with_auto(tmp_path):
    forced = mnc.compile(TINY_SPEC, backend="torch", strategy="plain").eval()
    assert forced.strategy == "plain"
    images = torch.rand(2, 3, 32, 32)
    from mnc.backend import BackendOptions, get_backend

    get_backend("torch").save(forced, tmp_path / "model.pt", BackendOptions())
    loaded = mnc.load(tmp_path / "model.pt").eval()
    assert loaded.strategy == "auto"
    with torch.inference_mode():
        assert torch.allclose(loaded(images), forced(images), atol=1e-4)


def test_copies_and_pickles_leave_the_executors_behind():
    model = mnc.compile(TINY_SPEC, backend="torch").eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        expected = model(images)  # builds the executors and their caches
    assert "_dispatcher" in model.__dict__
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert "_dispatcher" not in clone.__dict__
        with torch.no_grad():
            clone.convs[next(iter(clone.convs))].bias.add_(1.0)  # the copy has its own weights
        with torch.inference_mode():
            assert not torch.allclose(clone(images), expected, atol=1e-4)
            assert torch.equal(model(images), expected)


def test_unknown_strategy_is_refused():
    with pytest.raises(BackendError, match="option 'strategy'.*'auto', 'plain', 'merged'"):
        mnc.compile(TINY_SPEC, backend="torch", strategy="fastest")
    model = mnc.compile(TINY_SPEC, backend="torch")
    with pytest.raises(BackendError, match="unknown execution strategy"):
        model.set_strategy("fast")
    assert model.strategy == "auto"
