"""Checkpointing a run: last.pt inside and after epochs, best.pt, kept epochs, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mnc.io.checkpoint_index import read_index  # noqa: E402
from mnc_backends.torch import MouseNet  # noqa: E402
from mnc_backends.torch.training import checkpoint, distributed  # noqa: E402
from mnc_backends.torch.training.checkpointing import RunCheckpoints  # noqa: E402
from mnc_backends.torch.weights_io import load_model  # noqa: E402
from tests.training import parts  # noqa: E402

pytestmark = pytest.mark.torch

VAL = {"loss": 2.0, "top1": 0.5, "top5": 0.9, "images": 90, "skipped_images": 0}


@pytest.fixture(scope="module")
def ir():
    return parts.micro_ir()


def _checkpoints(folder: Path, ir, **changes) -> RunCheckpoints:
    folder.mkdir(exist_ok=True)
    return RunCheckpoints(folder, ir, parts.config(**changes), parts.CPU)


def test_a_checkpoint_inside_an_epoch_holds_the_sums_so_far(tmp_path: Path, ir):
    checkpoints = _checkpoints(tmp_path, ir)
    state = parts.new_state(ir, seed=0)
    state.step = state.step_in_epoch = 2
    state.partial["seen"] = 8.0  # carried from before a resume
    checkpoints.save_inside_epoch(state, torch.tensor([3.0, 1.0, 16.0, 0.0],
                                                      dtype=torch.float64), 1.5)
    saved = checkpoint.load_checkpoint(tmp_path / "last.pt")
    assert saved["partial"] == {"loss_sum": 3.0, "correct": 1.0, "seen": 24.0,
                                "seconds": 1.5, "skipped": 0.0}
    assert (saved["epoch"], saved["step"], saved["step_in_epoch"]) == (0, 2, 2)
    assert saved["content_hash"] == ir.content_hash and saved["world_size"] == 1
    assert state.partial["seen"] == 8.0  # the state itself is unchanged
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "metrics.jsonl").exists()


# no optimizer step: only the schedule matters here
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_after_an_epoch_best_and_kept_checkpoints_follow_validation(tmp_path: Path, ir):
    checkpoints = _checkpoints(tmp_path, ir, keep_checkpoints="2")
    state = parts.new_state(ir, seed=0)
    for top1 in (0.4, 0.3):
        improved = state.end_epoch({"epoch": state.epoch + 1, "val_top1": top1})
        checkpoints.save_epoch(state, improved, {**VAL, "top1": top1})
    best = checkpoint.load_checkpoint(tmp_path / "best.pt")
    last = checkpoint.load_checkpoint(tmp_path / "last.pt")
    assert (best["epoch"], best["best_top1"], last["epoch"]) == (1, 0.4, 2)
    # the best network's weights alone
    exported = load_model(tmp_path / "best.safetensors", MouseNet)
    assert exported.ir.content_hash == ir.content_hash
    for name, tensor in exported.state_dict().items():
        assert torch.equal(tensor, best["state_dict"][name]), name
    assert [(kept.epoch, kept.val_top1) for kept in read_index(tmp_path)] == [(2, 0.3)]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["val_top1"] for line in lines] == [0.4, 0.3]


def test_resuming_restores_the_state_and_only_rank_0_keeps_the_partial_sums(tmp_path: Path,
                                                                            ir):
    checkpoints = _checkpoints(tmp_path, ir)
    saved = parts.new_state(ir, seed=0)
    saved.step = saved.step_in_epoch = 1
    checkpoints.save_inside_epoch(saved, torch.tensor([2.0, 1.0, 8.0, 0.0],
                                                      dtype=torch.float64), 1.0)
    stored = checkpoint.load_checkpoint(tmp_path / "last.pt")
    main = parts.new_state(ir, seed=1)
    checkpoints.resume(main, stored)
    assert main.partial["seen"] == 8.0 and main.step_in_epoch == 1
    other = RunCheckpoints(tmp_path, ir, checkpoints.config,
                           distributed.Context(1, 1, 0, torch.device("cpu")))
    second = parts.new_state(ir, seed=1)
    other.resume(second, stored)
    assert second.partial["seen"] == 0.0 and second.step_in_epoch == 1
    for name, tensor in saved.model.state_dict().items():
        assert torch.equal(main.model.state_dict()[name], tensor), name


def test_epoch_zero_is_kept_only_before_the_first_step(tmp_path: Path, ir):
    checkpoints = _checkpoints(tmp_path, ir, keep_checkpoints="0")
    state = parts.new_state(ir, seed=0)
    assert checkpoints.keeps_untrained(state)
    checkpoints.keep(state, VAL)
    assert [(kept.epoch, kept.step) for kept in read_index(tmp_path)] == [(0, 0)]
    state.step = 1
    assert not checkpoints.keeps_untrained(state)
    assert not _checkpoints(tmp_path / "other", ir).keeps_untrained(parts.new_state(ir, 0))
