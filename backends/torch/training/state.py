"""What a training run carries from step to step, and exactly what its checkpoints hold.

``TrainingState`` owns the network, the optimizer, the learning-rate scheduler, the gradient
scaler and the counters (epoch, step, step inside the epoch, best validation top-1, the
metrics of finished epochs, and the running sums of an epoch stopped in the middle).
``state_dict()`` is the training part of a checkpoint, random states included;
``load_state_dict`` restores it, so a resumed run continues as if it had not stopped.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mnc.ir.model import IR
from mnc_backends.torch.training import checkpoint, distributed
from mnc_backends.torch.training.config import TrainConfig
from mnc_backends.torch.training.model import build_model, load_state, unwrap

PARTIAL_KEYS = ("loss_sum", "correct", "seen", "seconds", "skipped")
"""Running sums of an epoch stopped in the middle (all ranks together, kept by rank 0)."""


def empty_partial() -> dict[str, float]:
    return dict.fromkeys(PARTIAL_KEYS, 0.0)


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """Multiplier of ``lr`` during ``epoch`` (0-based): warm-up, then the schedule."""
    if epoch < config.warmup_epochs:
        return 0.1 + 0.9 * epoch / config.warmup_epochs
    after = epoch - config.warmup_epochs
    if config.schedule == "step":
        return config.lr_gamma ** (after // config.lr_step_epochs)
    if config.schedule == "cosine":
        span = max(1, config.epochs - config.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(after, span) / span))
    return 1.0


class TrainingState:
    """The network and optimizer of a run, its counters, and their checkpoint form."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler,
                 scaler: torch.amp.GradScaler) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.epoch = 0
        """Finished epochs."""
        self.step = 0
        """Optimizer steps taken (batches whose images were all unreadable count too)."""
        self.step_in_epoch = 0
        self.best_top1 = -1.0
        self.history: list[dict[str, Any]] = []
        """One metrics entry per finished epoch (``metrics.jsonl``)."""
        self.partial = empty_partial()

    @classmethod
    def create(cls, ir: IR, config: TrainConfig, context: distributed.Context) -> TrainingState:
        """A fresh state for ``ir`` on the context's device (draws the initial weights)."""
        model = build_model(ir, config.strategy).to(context.device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if config.sync_batchnorm and context.distributed:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay, nesterov=config.nesterov)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: lr_factor(config, epoch))
        # A scaler matters for float16 on CUDA only; elsewhere it is a pass-through.
        use_scaler = bool(config.amp) and config.amp_dtype == "float16" and \
            context.device.type == "cuda"
        return cls(model, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_scaler))

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint entries of the run (without the header, IR, config, world size)."""
        return {"state_dict": unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "rng": checkpoint.rng_state(), "epoch": self.epoch, "step": self.step,
                "step_in_epoch": self.step_in_epoch, "partial": dict(self.partial),
                "best_top1": self.best_top1, "metrics": list(self.history)}

    def load_state_dict(self, stored: dict[str, Any], origin: str, *,
                        with_partial: bool = True) -> None:
        """Restore a checkpoint's entries (random states included); ``origin`` names the file
        in errors. Only rank 0 carries the partial sums of all ranks: the others pass
        ``with_partial=False``."""
        load_state(self.model, stored["state_dict"], origin)
        self.optimizer.load_state_dict(stored["optimizer"])
        self.scheduler.load_state_dict(stored["scheduler"])
        if stored.get("scaler"):
            self.scaler.load_state_dict(stored["scaler"])
        checkpoint.set_rng_state(stored["rng"])
        self.epoch = int(stored["epoch"])
        self.step = int(stored["step"])
        self.step_in_epoch = int(stored.get("step_in_epoch", 0))
        self.best_top1 = float(stored.get("best_top1", -1.0))
        self.history = list(stored["metrics"])
        partial = stored.get("partial") if with_partial else None
        self.partial = dict(partial or empty_partial())

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def count_step(self) -> None:
        self.step += 1
        self.step_in_epoch += 1

    def partial_plus(self, totals: list[float], seconds: float) -> dict[str, float]:
        """The partial sums with an epoch's running totals (loss, correct, seen, unreadable)
        and seconds added: what a checkpoint written inside the epoch stores."""
        return {"loss_sum": self.partial["loss_sum"] + totals[0],
                "correct": self.partial["correct"] + totals[1],
                "seen": self.partial["seen"] + totals[2],
                "seconds": self.partial["seconds"] + seconds,
                "skipped": self.partial.get("skipped", 0.0) + totals[3]}

    def end_epoch(self, entry: dict[str, Any]) -> bool:
        """Record a finished epoch's metrics and step the schedule; True if validation top-1
        improved on every earlier epoch."""
        self.scheduler.step()
        self.epoch += 1
        self.step_in_epoch = 0
        self.partial = empty_partial()
        self.history.append(entry)
        improved = bool(entry["val_top1"] > self.best_top1)
        if improved:
            self.best_top1 = entry["val_top1"]
        return improved
