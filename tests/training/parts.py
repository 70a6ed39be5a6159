"""Small pieces for the tests of the training parts: a very small network, random images, a
SIGTERM in the middle of an epoch."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from mnc.ir.model import IR
from mnc.lowering.weights_format import ir_from_payload
from mnc_backends.torch.training import distributed, epoch, loaders
from mnc_backends.torch.training.config import TrainConfig
from mnc_backends.torch.training.datasets import ArrayDataset, Augmentation, ViewSettings
from mnc_backends.torch.training.epoch import StepParts
from mnc_backends.torch.training.state import TrainingState
from tests.conftest import ROOT

LEGACY_MID_EPOCH = ROOT / "tests" / "data" / "checkpoint-v1-mid-epoch.pt"
"""Written inside epoch 1 by the trainer before it was split into parts (see its test)."""

CPU = distributed.Context(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def legacy_checkpoint() -> dict[str, Any]:
    return torch.load(LEGACY_MID_EPOCH, weights_only=True)


def micro_ir() -> IR:
    """The network of the stored checkpoint: MouseNet's graph with 1-7 channels per area."""
    return ir_from_payload(legacy_checkpoint(), str(LEGACY_MID_EPOCH))


def config(**changes: Any) -> TrainConfig:
    """A resolved CPU config (every field the trainer fills in is set)."""
    return TrainConfig(**{"data": "digits", "format": "digits", "epochs": 2, "batch_size": 8,
                          "lr": 0.05, "schedule": "constant", "device": "cpu", "workers": 0,
                          "amp": False, "channels_last": False, "progress": False,
                          "crop_scale": (0.6, 1.0), "hflip": False, **changes})


def new_state(ir: IR, seed: int, settings: TrainConfig | None = None) -> TrainingState:
    torch.manual_seed(seed)
    return TrainingState.create(ir, settings or config(), CPU)


def parts(state: TrainingState, settings: TrainConfig | None = None) -> StepParts:
    return StepParts(state.model, torch.nn.CrossEntropyLoss(), settings or config(), CPU)


def dataset(count: int, size: int = 32, train: bool = True, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 3, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    augmentation = Augmentation((0.6, 1.0), (3 / 4, 4 / 3), False) if train else None
    view = ViewSettings((size, size), 3, 0.875, augmentation)
    return ArrayDataset(images, labels, [str(n) for n in range(10)], view, "random")


def train_loader(data: torch.utils.data.Dataset, batch: int = 8, seed: int = 0
                 ) -> tuple[torch.utils.data.DataLoader, loaders.ResumableDistributedSampler]:
    sampler = loaders.ResumableDistributedSampler(data, 1, 0, seed)
    return loaders.make_loader(data, sampler, batch, 0, False, 2), sampler


def val_loader(data: torch.utils.data.Dataset, batch: int = 8) -> torch.utils.data.DataLoader:
    return loaders.make_loader(data, loaders.ShardSampler(len(data), 1, 0), batch, 0, False, 2)


def weights(state: TrainingState) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in state.model.state_dict().items()}


@contextmanager
def sigterm_at_batch(call: int) -> Iterator[None]:
    """Within the block, the trainer receives SIGTERM as it normalises its ``call``-th batch
    (counted from 1 over the whole run); the trainer's own step is back after the block."""
    original = epoch.normalize_batch
    calls = 0

    def normalize_then_signal(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            signal.raise_signal(signal.SIGTERM)
        return original(*args, **kwargs)

    epoch.normalize_batch = normalize_then_signal
    try:
        yield
    finally:
        epoch.normalize_batch = original
