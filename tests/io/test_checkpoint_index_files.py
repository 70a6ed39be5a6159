"""checkpoints.json is read like any file a user hands over: epochs must be whole finite
numbers, and a kept file reached through a link that leads out of the run folder is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnc.errors import UserFileError
from mnc.io.checkpoint_index import read_index


def _index(run: Path, **entry: object) -> None:
    values = {
        "epoch": 1,
        "step": 2,
        "val_top1": 0.5,
        "val_top5": 1.0,
        "file": "checkpoints/epoch-0001.pt",
        **entry,
    }
    (run / "checkpoints.json").write_text(json.dumps([values]))


@pytest.mark.parametrize("epoch", [float("inf"), float("nan"), 1.5, True, -1, "1e400"])
def test_an_epoch_that_is_no_count_is_one_message(tmp_path: Path, epoch: object) -> None:
    _index(tmp_path, epoch=epoch)
    with pytest.raises(UserFileError, match="checkpoints.json: entry 0: epoch"):
        read_index(tmp_path)


def test_a_kept_file_linked_out_of_the_run_folder_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes(b"x")
    (run / "checkpoints" / "epoch-0001.pt").symlink_to(outside)
    _index(run)
    with pytest.raises(UserFileError, match="leads out of the run folder"):
        read_index(run)


def test_a_linked_folder_leading_out_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "epoch-0001.pt").write_bytes(b"x")
    (run / "checkpoints").symlink_to(tmp_path / "other")
    _index(run)
    with pytest.raises(UserFileError, match="leads out of the run folder"):
        read_index(run)


def test_a_sound_index_is_read(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "epoch-0001.pt").write_bytes(b"x")
    _index(tmp_path)
    assert [item.epoch for item in read_index(tmp_path)] == [1]
