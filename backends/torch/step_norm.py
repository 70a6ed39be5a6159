"""BatchNorm with running statistics per time step and one affine map (recurrent BatchNorm).

A recurrent network's steps see different activity (step 0 has no feedback yet): statistics
shared by all steps end up dominated by the later steps, so evaluation rescales the early
ones. Here each step keeps its own running mean and variance (Cooijmans et al. 2017,
"Recurrent batch normalization", ICLR), while ``weight`` and ``bias`` stay shared: the network
learns one normalisation, and evaluation divides each step by its own statistics.

State: ``weight``, ``bias`` ``(C,)``, ``running_mean``, ``running_var`` ``(steps, C)`` (one
step: ``(C,)``), ``num_batches_tracked`` ``()``, counting runs. A state dict of the earlier
format (statistics ``(C,)``, shared by the steps) loads with those statistics copied to every
step, and a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SHARED_STATISTICS_WARNING = (
    "BatchNorm statistics shared by all steps (the earlier format) were copied to every step "
    "of the per-step BatchNorm; evaluation rescales steps as the earlier model did until the "
    "running statistics are re-estimated (a few training-mode batches)"
)


class StepBatchNorm2d(nn.Module):
    """``forward(x, step)``: BatchNorm2d with the running statistics of ``step``."""

    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor

    def __init__(
        self, num_features: int, steps: int, eps: float = 1e-5, momentum: float | None = 0.1
    ) -> None:
        super().__init__()
        self.num_features, self.steps, self.eps, self.momentum = num_features, steps, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        shape = (steps, num_features) if steps > 1 else (num_features,)  # one step: shared
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor, step: int) -> Tensor:
        momentum = self.momentum
        if self.training:
            if step == 0:  # one batch of the run, counted once
                self.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative average over the batches seen
                momentum = 1.0 / float(self.num_batches_tracked)
        mean, var = self.running_mean, self.running_var
        if mean.dim() == 2:  # rows of a contiguous buffer: batch_norm updates them in place
            mean, var = mean[step], var[step]
        return F.batch_norm(
            x, mean, var, self.weight, self.bias, self.training, momentum or 0.0, self.eps
        )

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        shared = False
        for field in ("running_mean", "running_var"):
            value = state_dict.get(prefix + field)
            if isinstance(value, Tensor) and value.dim() == 1 and self.steps > 1:
                state_dict[prefix + field] = value.expand(self.steps, -1).clone()
                shared = True
        if shared:
            warnings.warn(SHARED_STATISTICS_WARNING, stacklevel=2)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.num_features}, steps={self.steps}, eps={self.eps}, momentum={self.momentum}"


def normalise(norm: nn.Module, drive: Tensor, step: int | None) -> Tensor:
    """A population's BatchNorm at ``step``: a recurrent network's keeps statistics per step
    (``StepBatchNorm2d``), a feed-forward network's is one ``BatchNorm2d`` (``step`` unused)."""
    if isinstance(norm, StepBatchNorm2d):
        return norm(drive, 0 if step is None else step)
    return norm(drive)
