"""One epoch of training: SGD steps over this rank's share of the data, with running sums.

``train_one_epoch`` continues the epoch at ``state.step_in_epoch`` (0 unless the run resumed
inside it) and calls ``after_step`` after every step that had images; that is where the
trainer checkpoints and stops. ``epoch_record`` turns the epoch's sums and the validation
result into the line ``metrics.jsonl`` gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from mnc_backends.torch.training import distributed, loaders, progress
from mnc_backends.torch.training.config import TrainConfig
from mnc_backends.torch.training.datasets import drop_unreadable
from mnc_backends.torch.training.model import network_input
from mnc_backends.torch.training.state import TrainingState
from mnc_backends.torch.training.transforms import normalize_batch

LOSS_POSTFIX_EVERY = 20
"""Steps between updates of the loss shown on the progress bar (reading it syncs the GPU)."""


@dataclass(frozen=True)
class StepParts:
    """What every step uses besides the state."""

    trained: torch.nn.Module
    """The network, or its DistributedDataParallel wrapper (which averages gradients)."""
    criterion: torch.nn.Module
    config: TrainConfig
    context: distributed.Context

    @property
    def amp_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.config.amp_dtype == "bfloat16" else torch.float16


@dataclass
class EpochSums:
    """One rank's running sums of an epoch: loss x images, correct, images, unreadable."""

    values: torch.Tensor
    started: float = field(default_factory=time.perf_counter)
    waited: float = 0.0
    """Seconds spent waiting for data: near zero when loading keeps up."""

    @classmethod
    def zeros(cls, device: torch.device) -> EpochSums:
        return cls(torch.zeros(4, device=device, dtype=torch.float64))

    @torch.no_grad()
    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        count = labels.shape[0]
        self.values[:3] += torch.stack([
            loss.detach().double() * count, (logits.argmax(1) == labels).sum().double(),
            torch.tensor(float(count), device=self.values.device, dtype=torch.float64)])

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def train_step(state: TrainingState, parts: StepParts, images: torch.Tensor,
               labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch of uint8 images; the loss and the logits."""
    config, device = parts.config, parts.context.device
    images = normalize_batch(images.to(device, non_blocking=True), config.mean, config.std,
                             bool(config.channels_last))
    labels = labels.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=parts.amp_dtype, enabled=bool(config.amp)):
        logits = parts.trained(network_input(parts.trained, images))
        loss = parts.criterion(logits, labels)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    if config.grad_clip_norm is not None:
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), config.grad_clip_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    return loss, logits


def train_one_epoch(state: TrainingState, parts: StepParts, loader: torch.utils.data.DataLoader,
                    sampler: loaders.ResumableDistributedSampler, steps: int,
                    after_step: Callable[[EpochSums], None]) -> EpochSums:
    """Steps ``state.step_in_epoch`` to ``steps`` of epoch ``state.epoch``; this rank's sums.

    A batch whose images were all unreadable counts as a step but takes none (and is not
    followed by ``after_step``).
    """
    config, context = parts.config, parts.context
    per_rank_batch = int(loader.batch_size or 1)
    sampler.set_epoch(state.epoch)
    sampler.start_at(state.step_in_epoch * per_rank_batch)
    parts.trained.train()
    sums = EpochSums.zeros(context.device)
    bar = progress.bar(steps * config.batch_size, f"epoch {state.epoch + 1}/{config.epochs}",
                       config.progress if context.is_main else False,
                       initial=state.step_in_epoch * config.batch_size)
    batches = iter(loader)
    try:
        while state.step_in_epoch < steps:
            before = time.perf_counter()
            images, labels = next(batches)
            sums.waited += time.perf_counter() - before
            images, labels, unreadable = drop_unreadable(images, labels)
            if unreadable:
                sums.values[3] += unreadable
            if not labels.numel():
                state.count_step()
                continue
            loss, logits = train_step(state, parts, images, labels)
            sums.add(loss, logits, labels)
            state.count_step()
            bar.update(labels.shape[0] * context.world_size)
            if state.step_in_epoch % LOSS_POSTFIX_EVERY == 0 and bar.disable is False:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            after_step(sums)
    finally:
        bar.close()
    return sums


def epoch_record(state: TrainingState, totals: list[float], train_seconds: float,
                 sums: EpochSums, val: dict[str, Any]) -> dict[str, Any]:
    """The metrics of the epoch just trained (before ``state.end_epoch``).

    ``totals`` are the epoch's sums over all ranks, ``train_seconds`` the time its steps took
    on this process; an epoch resumed from the middle adds what the checkpoint carried.
    """
    partial = state.partial
    seen = totals[2] + partial["seen"]
    train_time = train_seconds + partial["seconds"]
    return {"epoch": state.epoch + 1, "step": state.step, "lr": state.lr,
            "train_loss": (totals[0] + partial["loss_sum"]) / max(seen, 1),
            "train_top1": (totals[1] + partial["correct"]) / max(seen, 1),
            "train_images": int(seen), "train_images_per_s": seen / train_time,
            "train_skipped_images": int(totals[3] + partial.get("skipped", 0.0)),
            "data_wait_fraction": sums.waited / max(train_seconds, 1e-9),
            "epoch_seconds": sums.seconds() + partial["seconds"],
            **{f"val_{key}": value for key, value in val.items()}}
