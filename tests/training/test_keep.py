"""Checkpoints kept along training: schedule, files, index, epoch 0, resume, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mnc.errors import UserFileError
from mnc.io.checkpoint_index import read_index
from tests.conftest import TINY_SPEC
from tests.training.conftest import train_small

torch = pytest.importorskip("torch")

from mnc_backends.torch.training import train  # noqa: E402
from mnc_backends.torch.training.keep import parse_schedule  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.mark.parametrize(("text", "kept", "not_kept"), [
    ("0,1,5", [0, 1, 5], [2, 3, 4, 6, 10]),
    ("every:3", [0, 3, 6, 9], [1, 2, 4, 5]),
    ("0, every:2, 5", [0, 2, 4, 5, 6], [1, 3, 7]),
])
def test_schedule(text: str, kept: list[int], not_kept: list[int]) -> None:
    schedule = parse_schedule(text)
    assert [epoch for epoch in kept if schedule.keeps(epoch)] == kept
    assert not any(schedule.keeps(epoch) for epoch in not_kept)


@pytest.mark.parametrize("text", ["every:0", "every:x", "1-3", "-1", "every:2,every:3", "a"])
def test_bad_schedule_is_one_message(text: str, tmp_path: Path) -> None:
    with pytest.raises(UserFileError, match="keep_checkpoints") as caught:
        train(TINY_SPEC, tmp_path / "run", overrides={"keep_checkpoints": text})
    assert text.split(",")[0] in str(caught.value) or "every:" in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_kept_checkpoints_with_epoch_zero_survive_resume(tmp_path: Path, reference_run) -> None:
    folder = tmp_path / "run"
    first = train_small(folder, epochs=1, keep_checkpoints="0,every:1")
    kept = read_index(folder)
    assert [(k.epoch, k.step, k.file) for k in kept] == [
        (0, 0, "checkpoints/epoch-0000.pt"), (1, 3, "checkpoints/epoch-0001.pt")]
    assert kept[1].val_top1 == pytest.approx(first["final"]["val_top1"])
    assert 0.0 <= kept[0].val_top1 <= 1.0

    train(None, None, resume=folder, overrides={"epochs": 2})
    kept = read_index(folder)
    assert [k.epoch for k in kept] == [0, 1, 2]
    with open(folder / "checkpoints.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["file"] for row in rows] == [k.file for k in kept]
    assert float(rows[2]["val_top1"]) == pytest.approx(kept[2].val_top1, rel=1e-5)
    # Keeping checkpoints (epoch 0's validation included) leaves training itself unchanged.
    last = torch.load(folder / "last.pt", weights_only=True)
    reference = torch.load(Path(reference_run["run"]) / "last.pt", weights_only=True)
    kept_last = torch.load(folder / kept[2].file, weights_only=True)
    for name, tensor in reference["state_dict"].items():
        assert torch.equal(last["state_dict"][name], tensor), name
        assert torch.equal(kept_last["state_dict"][name], tensor), name
    assert kept_last["format"] == "mnc.torch-model" and kept_last["epoch"] == 2
    untrained = torch.load(folder / kept[0].file, weights_only=True)
    assert not all(torch.equal(untrained["state_dict"][name], tensor)
                   for name, tensor in reference["state_dict"].items())

    import mnc

    assert mnc.load(folder / kept[1].file).ir.content_hash == first["content_hash"]


def test_force_removes_kept_checkpoints(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "epoch-0007.pt").write_bytes(b"old")
    (folder / "checkpoints.json").write_text(json.dumps([  # the old run's record of it
        {"epoch": 7, "step": 7, "val_top1": 0.1, "val_top5": 0.5,
         "file": "checkpoints/epoch-0007.pt"}]))
    train(TINY_SPEC, folder, force=True, overrides={
        "data": "digits", "epochs": 1, "batch_size": 16, "max_steps_per_epoch": 1,
        "val_fraction": 0.05, "device": "cpu", "workers": 0, "progress": False,
        "keep_checkpoints": "1"})
    assert [k.epoch for k in read_index(folder)] == [1]
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["epoch-0001.pt"]


def test_broken_index_is_one_message(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.json").write_text('[{"epoch": 1}]')
    with pytest.raises(UserFileError, match=r"checkpoints.json: entry 0: missing step"):
        read_index(tmp_path)
    (tmp_path / "checkpoints.json").write_text(
        '[{"epoch": 1, "step": 2, "val_top1": 0.5, "val_top5": 1, "file": "../x.pt"}]')
    with pytest.raises(UserFileError, match="inside the run folder"):
        read_index(tmp_path)
