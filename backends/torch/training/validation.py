"""Validation during training: loss, top-1 and top-5 on the held-out split (all ranks).

``validate`` runs after each epoch. ``validate_untrained`` measures the network before the
first step (kept as epoch 0) and puts every random generator back afterwards, so a run that
keeps epoch 0 trains exactly as one that does not.
"""

from __future__ import annotations

from typing import Any

import torch

from mnc_backends.torch.training import checkpoint
from mnc_backends.torch.training.epoch import StepParts
from mnc_backends.torch.training.evaluation import evaluate_loader


def validate(parts: StepParts, loader: torch.utils.data.DataLoader) -> dict[str, Any]:
    """Mean loss, top-1, top-5, images and unreadable images over the whole split."""
    return evaluate_loader(parts.trained, loader, parts.context, parts.config,
                           parts.amp_dtype, parts.config.progress, "validate")


def validate_untrained(parts: StepParts, loader: torch.utils.data.DataLoader) -> dict[str, Any]:
    """``validate`` without moving any random stream (python, numpy, torch, CUDA)."""
    state = checkpoint.rng_state()
    try:
        return validate(parts, loader)
    finally:
        checkpoint.set_rng_state(state)
