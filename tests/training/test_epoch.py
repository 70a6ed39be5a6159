"""One epoch: steps, sums, the after-step hook, continuing inside an epoch, the metrics line."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mnc_backends.torch.training.datasets import UNREADABLE  # noqa: E402
from mnc_backends.torch.training.epoch import (  # noqa: E402
    EpochSums,
    epoch_record,
    train_one_epoch,
)
from tests.training import parts  # noqa: E402

pytestmark = pytest.mark.torch

IMAGES = 24  # 3 steps of 8


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def ir():
    return parts.micro_ir()


def test_an_epoch_takes_every_step_and_sums_what_it_saw(ir):
    state = parts.new_state(ir, seed=0)
    before = parts.weights(state)
    loader, sampler = parts.train_loader(parts.dataset(IMAGES))
    seen_after: list[tuple[int, float]] = []
    sums = train_one_epoch(state, parts.parts(state), loader, sampler, 3,
                           lambda sums: seen_after.append((state.step, float(sums.values[2]))))
    assert seen_after == [(1, 8.0), (2, 16.0), (3, 24.0)]
    assert (state.step, state.step_in_epoch, state.epoch) == (3, 3, 0)
    loss_sum, correct, seen, unreadable = sums.values.tolist()
    assert seen == IMAGES and unreadable == 0 and 0 <= correct <= IMAGES and loss_sum > 0
    assert any(not torch.equal(before[name], tensor)
               for name, tensor in parts.weights(state).items())


def test_an_epoch_stopped_inside_and_continued_ends_with_the_same_weights(ir):
    data = parts.dataset(IMAGES)
    whole = parts.new_state(ir, seed=0)
    loader, sampler = parts.train_loader(data)
    train_one_epoch(whole, parts.parts(whole), loader, sampler, 3, lambda sums: None)

    def stop_after_first(sums: EpochSums) -> None:
        if stopped.step_in_epoch == 1:
            raise _Stop

    stopped = parts.new_state(ir, seed=0)
    loader, sampler = parts.train_loader(data)
    with pytest.raises(_Stop):
        train_one_epoch(stopped, parts.parts(stopped), loader, sampler, 3, stop_after_first)
    assert stopped.step_in_epoch == 1
    loader, sampler = parts.train_loader(data)  # as a resumed run builds them anew
    sums = train_one_epoch(stopped, parts.parts(stopped), loader, sampler, 3, lambda sums: None)
    assert float(sums.values[2]) == 16.0  # the remaining two batches only
    expected = parts.weights(whole)
    assert all(torch.equal(expected[name], tensor)
               for name, tensor in parts.weights(stopped).items())


class _Unreadable(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, item):
        return torch.zeros(3, 32, 32, dtype=torch.uint8), UNREADABLE


def test_a_batch_of_unreadable_images_counts_a_step_but_takes_none(ir):
    state = parts.new_state(ir, seed=0)
    before = parts.weights(state)
    loader, sampler = parts.train_loader(_Unreadable())
    calls: list[int] = []
    sums = train_one_epoch(state, parts.parts(state), loader, sampler, 2,
                           lambda sums: calls.append(state.step))
    assert calls == [] and state.step == 2 and sums.values.tolist() == [0, 0, 0, 16]
    assert all(torch.equal(before[name], tensor)
               for name, tensor in parts.weights(state).items())


def test_the_metrics_line_adds_what_a_resumed_epoch_carried(ir):
    state = parts.new_state(ir, seed=0)
    state.epoch, state.step = 1, 7
    state.partial = {"loss_sum": 10.0, "correct": 2.0, "seen": 8.0, "seconds": 3.0,
                     "skipped": 1.0}
    sums = EpochSums.zeros(torch.device("cpu"))
    sums.waited = 0.5
    val = {"loss": 2.0, "top1": 0.5, "top5": 0.9, "images": 90, "skipped_images": 0}
    entry = epoch_record(state, [6.0, 6.0, 8.0, 2.0], 1.0, sums, val)
    assert entry["epoch"] == 2 and entry["step"] == 7 and entry["lr"] == pytest.approx(0.05)
    assert entry["train_loss"] == pytest.approx(1.0) and entry["train_top1"] == 0.5
    assert entry["train_images"] == 16 and entry["train_skipped_images"] == 3
    assert entry["train_images_per_s"] == pytest.approx(4.0)  # 16 images in 1 + 3 s
    assert entry["data_wait_fraction"] == pytest.approx(0.5)  # of this process's 1 s
    assert entry["epoch_seconds"] >= 3.0
    assert {key: entry[f"val_{key}"] for key in val} == val
