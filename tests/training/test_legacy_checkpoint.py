"""A checkpoint written by an earlier version of the trainer still resumes, exactly.

``tests/data/checkpoint-v1-mid-epoch.pt`` was written inside epoch 1 (after step 1 of 2) by
the trainer as it was before training was split into parts; ``checkpoint-v1-continued.pt``
holds the weights and metrics that trainer reached when it went on without stopping.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT

torch = pytest.importorskip("torch")

from mnc_backends.torch.training import checkpoint, train  # noqa: E402

pytestmark = pytest.mark.torch

DATA = ROOT / "tests" / "data"
MID_EPOCH = DATA / "checkpoint-v1-mid-epoch.pt"
CONTINUED = DATA / "checkpoint-v1-continued.pt"
TIMING = ("epoch_seconds", "train_images_per_s", "data_wait_fraction")


def test_an_earlier_versions_mid_epoch_checkpoint_resumes_to_the_same_weights(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(MID_EPOCH, folder / "last.pt")
    summary = train(None, None, resume=folder)
    expected = torch.load(CONTINUED, weights_only=True)
    assert (summary["epochs"], summary["steps"]) == (expected["epoch"], expected["step"])
    assert summary["content_hash"] == expected["content_hash"]
    saved = checkpoint.load_checkpoint(folder / "last.pt")
    for name, tensor in expected["state_dict"].items():
        torch.testing.assert_close(saved["state_dict"][name], tensor, rtol=1e-4, atol=1e-5,
                                   msg=name)
    [entry] = saved["metrics"]
    [reference] = expected["metrics"]
    assert entry.keys() == reference.keys()
    for key, value in reference.items():
        if key not in TIMING:
            assert entry[key] == pytest.approx(value, rel=1e-4), key
