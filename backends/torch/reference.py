"""Reference semantics, written as plainly as possible: the oracle and the benchmark baseline.

Every call multiplies each weight by its mask, pads the source explicitly with ``F.pad`` and
runs one convolution per projection; populations are visited in the IR's topological order.
It shares no code with ``MouseNet`` beyond the state-dict names, so the tests can hold the
compiled module to it (within 1e-5) and the benchmarks can measure every later optimisation
against it. Keep it slow and obvious.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnc.errors import BackendError
from mnc.ir.model import IR
from mnc_backends.torch.names import population_key, projection_key


class ReferenceConv(nn.Module):
    """Holds ``weight``, ``bias`` and ``mask`` under the contract's names; no logic."""

    mask: Tensor

    def __init__(self, out_channels: int, in_channels: int, kernel_size: int) -> None:
        super().__init__()
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("mask", torch.ones(shape))


class ReferenceMouseNet(nn.Module):
    """Same state-dict names as ``MouseNet``; load its ``state_dict()`` before use."""

    def __init__(self, ir: IR) -> None:
        super().__init__()
        if ir.mask.mode == "learnable":
            raise BackendError("the reference network covers fixed masks only "
                               "(mask modes gaussian, none, expected), not 'learnable'")
        self.ir = ir
        self.convs = nn.ModuleDict({
            projection_key(q.source, q.target): ReferenceConv(q.out_channels, q.in_channels,
                                                              q.kernel_size)
            for q in ir.projections})
        self.norms = nn.ModuleDict({population_key(p.name): nn.BatchNorm2d(p.channels)
                                    for p in ir.populations if p.name != "input"})
        self.classifier = nn.Linear(ir.readout.features, ir.readout.classes)

    def populations(self, images: Tensor) -> dict[str, Tensor]:
        """Activity of every population (after ReLU), by IR name."""
        activity = {"input": images}
        for population in self.ir.populations:
            if population.name == "input":
                continue
            total: Tensor | None = None
            for projection in self.ir.projections:
                if projection.target != population.name:
                    continue
                conv = self.convs[projection_key(projection.source, projection.target)]
                assert isinstance(conv, ReferenceConv)
                padded = F.pad(activity[projection.source], projection.padding_lrtb)
                out = F.conv2d(padded, conv.weight * conv.mask, conv.bias,
                               stride=projection.stride)
                total = out if total is None else total + out
            if total is None:
                raise BackendError(f"population {population.name!r} has no incoming projection")
            activity[population.name] = F.relu(self.norms[population_key(population.name)](total))
        return activity

    def forward(self, images: Tensor) -> Tensor:
        activity = self.populations(images)
        pool = self.ir.readout.pool_size
        pooled = [F.adaptive_avg_pool2d(activity[name], pool).flatten(1)
                  for name in self.ir.readout.populations]
        return self.classifier(torch.cat(pooled, dim=1))
