"""How much of a population's input drive each kind of projection supplies, measured.

For every population that receives a delayed interareal (feedback) projection: the variance,
over a batch and every unit, of the summed delay-0 inputs (the feed-forward drive) and of the
summed delayed interareal inputs (feedback), at one step of a run. Delayed interlaminar
inputs (lateral) are reported apart. ``mnc.lowering.fresh_weights`` sets the initial feedback
share from ``interareal.feedback_share``; this measures what it gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mnc.ir.model import InterarealProfile, Projection
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.names import projection_key


@dataclass(frozen=True)
class DriveVariance:
    population: str
    feedforward: float
    """Variance of the summed delay-0 inputs."""
    feedback: float
    """Variance of the summed delayed interareal inputs."""
    lateral: float
    """Variance of the summed delayed interlaminar inputs (0 if none)."""

    @property
    def feedback_share(self) -> float:
        """feedback / (feedforward + feedback)."""
        return self.feedback / (self.feedforward + self.feedback)


@torch.no_grad()
def drive_variances(model: MouseNet, images: Tensor, step: int = 1) -> list[DriveVariance]:
    """The drive variances of every feedback target at ``step`` (0-based), by running
    ``images`` through ``model`` in its current mode (train mode: BatchNorm on batch
    statistics, the running statistics update as in training)."""
    ir = model.ir
    if not 1 <= step < ir.dynamics.steps:
        raise ValueError(f"step {step} is outside 1..{ir.dynamics.steps - 1}")
    targets = [
        q.target for q in ir.projections if q.delay and isinstance(q.profile, InterarealProfile)
    ]
    names = list(dict.fromkeys(targets))
    sources = {q.source for q in ir.projections if q.target in names}
    activity = model.plain_features(images, sorted(sources | set(names)))
    if ir.dynamics.input == "still":
        activity["input"] = torch.stack([images] * ir.dynamics.steps, dim=1)
    return [DriveVariance(name, **_variances(model, activity, name, step)) for name in names]


def _kind(projection: Projection) -> str:
    """feedforward (delay 0), feedback (delayed interareal) or lateral (delayed
    interlaminar)."""
    if projection.delay == 0:
        return "feedforward"
    return "feedback" if isinstance(projection.profile, InterarealProfile) else "lateral"


def _variances(model: MouseNet, activity: dict[str, Tensor], name: str, step: int
               ) -> dict[str, float]:
    """The variance of each kind's summed inputs to ``name`` at ``step`` (0 for a kind with
    none arrived by then)."""
    sums: dict[str, Tensor | int] = {"feedforward": 0, "feedback": 0, "lateral": 0}
    for q in model.ir.projections:
        if q.target != name or q.delay > step:
            continue
        kind, source = _kind(q), activity[q.source][:, step - q.delay]
        sums[kind] = sums[kind] + model.convs[projection_key(q.source, q.target)](source)
    return {kind: float(value.var()) if isinstance(value, Tensor) else 0.0
            for kind, value in sums.items()}
