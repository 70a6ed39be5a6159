"""The names of a readout's classes: ImageNet's 1000 (shipped with mnc), or a data set's own.

The default spec's readout has 1000 classes because MouseNet is trained on ImageNet, so a
model that says nothing else about its classes is named with ImageNet's; a model trained on
other data carries the names of that data set's classes (training checkpoints record them).
"""

from __future__ import annotations

import functools
from pathlib import Path

IMAGENET_CLASSES_FILE = Path(__file__).resolve().parent / "data" / "imagenet_classes.txt"
"""One name per line in label order; ``#`` lines say where the names come from."""
IMAGENET_CLASSES = 1000


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """ImageNet's (ILSVRC2012) 1000 class names, index 0 (tench) to 999 (toilet tissue)."""
    lines = IMAGENET_CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    names = tuple(line for line in lines if line and not line.startswith("#"))
    if len(names) != IMAGENET_CLASSES:  # a damaged install, not a user's mistake
        raise RuntimeError(f"{IMAGENET_CLASSES_FILE}: {len(names)} class names, expected "
                           f"{IMAGENET_CLASSES}")
    return names


def default_class_names(classes: int) -> list[str] | None:
    """ImageNet's names for a 1000-class readout that says nothing else; otherwise None."""
    return list(imagenet_class_names()) if classes == IMAGENET_CLASSES else None
