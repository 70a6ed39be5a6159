"""Progress bars (tqdm, images per second and ETA) and one summary line per epoch."""

from __future__ import annotations

from typing import Any

from mnc import progress
from mnc.progress import duration


def bar(total: int, description: str, enabled: bool | None, initial: int = 0) -> Any:
    """A bar counted in images; ``enabled=None`` shows a bar on a terminal or in a notebook
    and a line every few seconds in a log, ``False`` nothing."""
    return progress.bar(total=total, initial=initial, desc=description, unit="img",
                        unit_scale=True, dynamic_ncols=True, leave=False, show=enabled)


def epoch_line(entry: dict[str, Any], epochs: int | None = None) -> str:
    """The summary of a finished epoch; with ``epochs`` (the run's total) also the time the
    run has left at this epoch's pace."""
    line = (f"epoch {entry['epoch']:>3}  train loss {entry['train_loss']:.4f} "
            f"top-1 {entry['train_top1']:.2%}  val loss {entry['val_loss']:.4f} "
            f"top-1 {entry['val_top1']:.2%} top-5 {entry['val_top5']:.2%}  "
            f"lr {entry['lr']:.3g}  {entry['train_images_per_s']:.0f} img/s  "
            f"({entry['data_wait_fraction']:.0%} waiting for data)  "
            f"{entry['epoch_seconds']:.1f} s")
    train, val = entry.get("train_skipped_images", 0), entry.get("val_skipped_images", 0)
    if train or val:
        line += (f"  skipped {train + val} unreadable image(s): {train} in training, {val} "
                 f"in validation")
    left = (epochs or 0) - int(entry["epoch"])
    if left > 0:
        line += f"  (about {duration(left * float(entry['epoch_seconds']))} left for " \
                f"{left} more epoch{'s' if left > 1 else ''})"
    return line


def start_line(spec: Any, folder: Any, config: Any, device: Any, world_size: int) -> str:
    """What a run is about to do: spec, data, epochs, batch, device, processes, run folder."""
    what = spec if spec is not None else "the run's own network"
    processes = "1 process" if world_size == 1 else f"{world_size} processes"
    epochs = "1 epoch" if config.epochs == 1 else f"{config.epochs} epochs"
    return (f"training {what} on {config.data}: {epochs}, global batch "
            f"{config.batch_size}, device {device}, {processes}; run folder {folder}")


def small_data_hint(config: Any) -> str:
    """Said when digits runs with the ImageNet recipe's epochs because none were given."""
    return (f"{config.data} trains with the ImageNet recipe's {config.epochs} epochs unless "
            f"--epochs says otherwise (a few epochs reach most of its accuracy); each epoch "
            f"line says how long the run has left")


def resume_line(origin: Any, stored: dict[str, Any], epochs: int) -> str:
    """Where a resumed run continues: the checkpoint file, epoch and step."""
    epoch, step = int(stored["epoch"]), int(stored["step"])
    in_epoch = int(stored.get("step_in_epoch", 0))
    if epoch >= epochs:
        where = f"nothing left to train: {epoch} of {epochs} epochs done"
    elif in_epoch:
        where = f"continuing epoch {epoch + 1} of {epochs} after its step {in_epoch}"
    else:
        where = f"starting epoch {epoch + 1} of {epochs}"
    return f"resuming from {origin} (saved after {step} steps): {where}"
