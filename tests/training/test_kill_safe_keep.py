"""A kill while an epoch's checkpoints are written never loses a scheduled kept checkpoint:
the kept file and its index entry come before ``last.pt`` moves past the epoch, and
``--resume`` writes again the kept checkpoint an earlier version lost, or reports the gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnc.io.checkpoint_index import read_index
from tests.training.conftest import train_small

torch = pytest.importorskip("torch")

from mnc_backends.torch.training import checkpointing, train  # noqa: E402

pytestmark = pytest.mark.torch


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


def test_a_kill_while_keeping_leaves_the_epoch_to_train_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    real_keep = checkpointing.keep.keep_model

    def keep_then_die(run: Path, model: object, *, epoch: int, **kwargs: object) -> object:
        if epoch == 2:
            raise _Killed
        return real_keep(run, model, epoch=epoch, **kwargs)

    monkeypatch.setattr(checkpointing.keep, "keep_model", keep_then_die)
    with pytest.raises(_Killed):
        train_small(folder, epochs=2, keep_checkpoints="every:1")
    monkeypatch.undo()
    assert torch.load(folder / "last.pt", weights_only=True)["epoch"] == 1
    train(None, None, resume=folder)
    assert [k.epoch for k in read_index(folder)] == [0, 1, 2]


def test_resume_writes_again_the_kept_checkpoint_an_old_run_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    train_small(folder, epochs=2, keep_checkpoints="1,2")
    # An earlier version wrote last.pt first: a kill then left epoch 2 out of the index.
    index = json.loads((folder / "checkpoints.json").read_text())
    (folder / "checkpoints.json").write_text(json.dumps(index[:1]))
    capsys.readouterr()
    train(None, None, resume=folder, overrides={"epochs": 3})
    kept = read_index(folder)
    assert [k.epoch for k in kept] == [1, 2]
    assert "epoch 2 was missing" in capsys.readouterr().err
    stored = torch.load(folder / kept[1].file, weights_only=True)
    assert stored["epoch"] == 2


def test_resume_reports_a_gap_it_cannot_fill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    train_small(folder, epochs=2, keep_checkpoints="1,2")
    index = json.loads((folder / "checkpoints.json").read_text())
    (folder / "checkpoints.json").write_text(json.dumps(index[1:]))
    capsys.readouterr()
    train(None, None, resume=folder, overrides={"epochs": 2})
    assert "lacks scheduled epoch(s) 1" in capsys.readouterr().err
