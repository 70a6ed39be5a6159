"""Validation during training: the untrained network is measured without moving any random
stream, so keeping epoch 0 does not change how the run trains."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mnc_backends.torch.training.validation import validate, validate_untrained  # noqa: E402
from tests.training import parts  # noqa: E402

pytestmark = pytest.mark.torch


def _draws() -> tuple[float, float, float]:
    return float(torch.rand(1)), float(np.random.rand()), random.random()


def test_validating_the_untrained_network_leaves_the_random_streams_alone():
    state = parts.new_state(parts.micro_ir(), seed=0)
    step_parts = parts.parts(state)
    loader = parts.val_loader(parts.dataset(20, train=False))

    torch.manual_seed(4)
    plain = validate(step_parts, loader)
    moved = _draws()
    torch.manual_seed(4)
    np.random.seed(4)
    random.seed(4)
    expected = _draws()
    torch.manual_seed(4)
    np.random.seed(4)
    random.seed(4)
    untrained = validate_untrained(step_parts, loader)
    assert _draws() == expected
    assert moved[0] != expected[0]  # plain validation draws from torch's stream (the loader)
    assert untrained == plain and plain["images"] == 20
    assert 0 <= plain["top1"] <= plain["top5"] <= 1 and plain["loss"] > 0
