"""Progress bars (tqdm, images per second and ETA) and one summary line per epoch."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def bar(total: int, description: str, enabled: bool | None, initial: int = 0) -> tqdm:
    """A bar counted in images; ``enabled=None`` shows it only when stderr is a terminal."""
    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    return tqdm(total=total, initial=initial, desc=description, unit="img", unit_scale=True,
                dynamic_ncols=True, leave=False, disable=disable, file=sys.stderr)


def epoch_line(entry: dict[str, Any]) -> str:
    return (f"epoch {entry['epoch']:>3}  train loss {entry['train_loss']:.4f} "
            f"top-1 {entry['train_top1']:.2%}  val loss {entry['val_loss']:.4f} "
            f"top-1 {entry['val_top1']:.2%} top-5 {entry['val_top5']:.2%}  "
            f"lr {entry['lr']:.3g}  {entry['train_images_per_s']:.0f} img/s  "
            f"({entry['data_wait_fraction']:.0%} waiting for data)  "
            f"{entry['epoch_seconds']:.1f} s")
