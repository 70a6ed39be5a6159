"""Checkpoints kept along training (``--keep-checkpoints``), for studies of the trajectory.

The schedule is a comma-separated list of epochs and ``every:N`` terms: ``0,1,5`` keeps the
untrained network (epoch 0, saved before the first step) and the networks after epochs 1 and
5; ``0,every:2`` keeps epoch 0 and every second epoch. Each kept file is a saved model (the
``mnc.torch-model`` format, so ``mnc.load``, ``mnc evaluate`` and ``mnc rsa`` read it) with the
epoch, step, validation accuracy and training config added; the index is
``checkpoints.json``/``.csv`` (``mnc.io.checkpoint_index``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnc.io import checkpoint_index
from mnc.io.checkpoint_index import KeptCheckpoint
from mnc.train_options import EVERY, KeepSchedule, parse_schedule

__all__ = ["EVERY", "KeepSchedule", "kept_epochs", "parse_schedule", "save_kept"]

def kept_epochs(run: Path) -> set[int]:
    if not checkpoint_index.has_index(run):
        return set()
    return {item.epoch for item in checkpoint_index.read_index(run)}


def save_kept(run: Path, model_state: dict[str, Any], *, epoch: int, step: int,
              val_top1: float, val_top5: float, config: dict[str, Any]) -> KeptCheckpoint:
    """Write ``checkpoints/epoch-NNNN.pt`` and add it to the index (replacing that epoch's).

    ``model_state`` is the saved-model dict (format, content_hash, ir_json, state_dict). The
    file is written before the index, so the index never names a file that is not complete.
    """

    item = KeptCheckpoint(epoch=epoch, step=step, val_top1=float(val_top1),
                          val_top5=float(val_top5), file=checkpoint_index.file_name(epoch))
    content = {**model_state, "epoch": epoch, "step": step, "val_top1": item.val_top1,
               "val_top5": item.val_top5, "config": config}
    # lazy: the config imports this module to check schedules, without torch
    from mnc_backends.torch.safe_save import save_torch_file

    save_torch_file(content, item.path(run))
    others = [kept for kept in (checkpoint_index.read_index(run)
                                if checkpoint_index.has_index(run) else [])
              if kept.epoch != epoch]
    checkpoint_index.write_index(run, [*others, item])
    return item


def keep_model(run: Path, model: Any, *, epoch: int, step: int, val: dict[str, Any],
               config: dict[str, Any]) -> KeptCheckpoint:
    """``save_kept`` for a MouseNet module (tensors copied to the CPU)."""
    from mnc_backends.torch.weights_io import model_payload

    return save_kept(run, model_payload(model), epoch=epoch, step=step,
                     val_top1=val["top1"], val_top5=val["top5"], config=config)
