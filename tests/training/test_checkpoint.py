"""Checkpoints: random states round-trip as plain data; bad files are clear user errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError

torch = pytest.importorskip("torch")

from mnc_backends.torch.training import checkpoint  # noqa: E402

pytestmark = pytest.mark.torch


def test_random_states_round_trip_through_a_weights_only_file(tmp_path: Path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = checkpoint.rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    checkpoint.set_rng_state(torch.load(path, weights_only=True))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


class _NotPlain:
    pass


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable mnc checkpoint"),
    (b"not a checkpoint at all", "not a readable mnc checkpoint"),
    ({"format": "something-else", "format_version": 1}, "format is 'something-else'"),
    ({"format": "mnc.torch-checkpoint", "format_version": 1}, "entry 'content_hash' is missing"),
    ({"format": "mnc.torch-checkpoint", "format_version": 99}, "format_version 99"),
    ({"weights": _NotPlain()}, "objects other than tensors"),
])
def test_bad_checkpoints_are_user_errors(tmp_path: Path, content: object, message: str):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(UserFileError, match=message):
        checkpoint.load_checkpoint(path)


def test_missing_checkpoint_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserFileError, match="no such checkpoint file"):
        checkpoint.load_checkpoint(tmp_path / "none.pt")
