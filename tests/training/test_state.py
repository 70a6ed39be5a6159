"""The training state: its checkpoint form round-trips, old checkpoints load, epochs end."""

from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch")

from mnc_backends.torch.training.epoch import train_step  # noqa: E402
from mnc_backends.torch.training.state import lr_factor  # noqa: E402
from tests.training import parts  # noqa: E402

pytestmark = pytest.mark.torch


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=generator),
            torch.randint(0, 10, (4,), generator=generator))


def _through_a_file(content: dict) -> dict:
    """As a checkpoint file gives it back (a state dict shares the live tensors' memory)."""
    buffer = io.BytesIO()
    torch.save(content, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_loaded_state_continues_exactly_like_the_saved_one():
    ir = parts.micro_ir()
    saved = parts.new_state(ir, seed=0)
    train_step(saved, parts.parts(saved), *_batch(1))  # momentum buffers exist now
    saved.count_step()
    saved.best_top1, saved.partial["seen"] = 0.25, 4.0
    content = _through_a_file(saved.state_dict())
    expected_draw = torch.rand(3)

    loaded = parts.new_state(ir, seed=1)  # other initial weights, other random stream
    loaded.load_state_dict(content, "test")
    assert torch.equal(torch.rand(3), expected_draw)  # the random streams came back too
    assert (loaded.epoch, loaded.step, loaded.step_in_epoch, loaded.best_top1) == (0, 1, 1, 0.25)
    assert loaded.partial["seen"] == 4.0
    for state in (saved, loaded):
        train_step(state, parts.parts(state), *_batch(2))
    after_saved, after_loaded = parts.weights(saved), parts.weights(loaded)
    assert all(torch.equal(after_saved[name], after_loaded[name]) for name in after_saved)


def test_a_checkpoint_of_the_earlier_trainer_loads_and_saves_the_same_entries():
    stored = parts.legacy_checkpoint()
    state = parts.new_state(parts.micro_ir(), seed=5)
    state.load_state_dict(stored, str(parts.LEGACY_MID_EPOCH))
    assert (state.epoch, state.step, state.step_in_epoch) == (0, 1, 1)
    assert state.partial == stored["partial"] and state.history == []
    for name, tensor in stored["state_dict"].items():
        assert torch.equal(state.model.state_dict()[name], tensor), name
    written = state.state_dict()
    header = {"format", "format_version", "mnc_version", "content_hash", "ir_json", "config",
              "world_size"}
    assert set(written) == set(stored) - header
    assert written["optimizer"]["state"].keys() == stored["optimizer"]["state"].keys()
    assert written["scheduler"] == stored["scheduler"]


def test_other_ranks_do_not_carry_the_partial_sums():
    state = parts.new_state(parts.micro_ir(), seed=0)
    state.load_state_dict(parts.legacy_checkpoint(), "old.pt", with_partial=False)
    assert state.partial == dict.fromkeys(state.partial, 0.0) and state.step_in_epoch == 1


# no optimizer step: only the schedule matters here
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_ending_an_epoch_steps_the_schedule_and_tracks_the_best():
    state = parts.new_state(parts.micro_ir(), seed=0,
                            settings=parts.config(schedule="step", lr_step_epochs=1,
                                                  lr_gamma=0.5))
    state.partial["seen"] = 8.0
    assert state.end_epoch({"val_top1": 0.3}) is True
    assert state.end_epoch({"val_top1": 0.2}) is False
    assert state.end_epoch({"val_top1": 0.3}) is False  # equal is not better
    assert (state.epoch, state.best_top1, state.partial["seen"]) == (3, 0.3, 0.0)
    assert state.lr == pytest.approx(0.05 * 0.5**3)
    assert [entry["val_top1"] for entry in state.history] == [0.3, 0.2, 0.3]


@pytest.mark.parametrize(("changes", "factors"), [
    ({"schedule": "step", "lr_step_epochs": 2, "lr_gamma": 0.1}, [1, 1, 0.1, 0.1, 0.01]),
    ({"schedule": "constant", "warmup_epochs": 2}, [0.1, 0.55, 1, 1, 1]),
    ({"schedule": "cosine", "epochs": 4}, [1, 0.5 + 0.5 * 2**-0.5, 0.5, 0.5 - 0.5 * 2**-0.5, 0]),
])
def test_learning_rate_schedules(changes, factors):
    settings = parts.config(**changes)
    assert [lr_factor(settings, epoch) for epoch in range(5)] == pytest.approx(factors)

