"""mnc.compile(..., strategy=...) returns the accelerated network, which saves as the plain one."""

from __future__ import annotations

import pytest
import torch

import mnc
from mnc.errors import BackendError
from mnc_backends.torch.fast import FastMouseNet
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.torch


def test_strategy_option_wraps_and_agrees(tmp_path):
    plain = mnc.compile(TINY_SPEC, backend="torch").eval()
    fast = mnc.compile(TINY_SPEC, backend="torch", strategy="auto").eval()
    assert isinstance(fast, FastMouseNet)
    images = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(plain(images), fast(images), atol=1e-4)
    from mnc.backend import BackendOptions, get_backend

    get_backend("torch").save(fast, tmp_path / "fast.pt", BackendOptions())
    loaded = mnc.load(tmp_path / "fast.pt").eval()
    with torch.inference_mode():
        assert torch.equal(loaded(images), fast.base(images))


def test_unknown_strategy_is_refused():
    with pytest.raises(BackendError, match="unknown execution strategy 'fastest'"):
        mnc.compile(TINY_SPEC, backend="torch", strategy="fastest")
