"""Training and evaluation of compiled MouseNets (``mnc train``, ``mnc evaluate``, ``mnc plot``).

    spec --mnc.compile(backend="torch")--> nn.Module
    data (digits | ImageFolder | Downsampled ImageNet) --datasets/loaders--> uint8 batches
    trainer.train: SGD epochs, validation, atomic checkpoints, exact resume, DDP via torchrun
      -> run folder: config.yaml, run.json, ir.json, spec/, metrics.jsonl, last.pt, best.pt
    evaluation.evaluate_checkpoint: top-1 / top-5;  plot.plot_run: curves.png

Modules: config (pydantic settings), transforms, datasets, data, loaders, distributed,
checkpoint, rundir, model, evaluation, progress, plot; the loop's parts: state (what a
checkpoint holds), epoch (train_one_epoch), validation, checkpointing, stopping; trainer
sets a run up and drives them.
"""

from __future__ import annotations

from mnc_backends.torch.training.config import TrainConfig
from mnc_backends.torch.training.evaluation import evaluate_checkpoint
from mnc_backends.torch.training.plot import plot_run
from mnc_backends.torch.training.trainer import TrainingInterrupted, train

__all__ = ["TrainConfig", "TrainingInterrupted", "evaluate_checkpoint", "plot_run", "train"]
