"""A ``MouseNet``'s execution plan in its own keys: the time schedule's computations
(``mnc.lowering.schedule``) with the module's conv and norm keys. The module walks it on the
plain path, and the fast strategies read the same plan, so it sits below both.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnc.ir.model import IR
from mnc.lowering.schedule import Schedule
from mnc_backends.torch.names import population_key, projection_key

INPUT = "input"
"""The population that is the image itself (no convolution, BatchNorm or ReLU)."""


Activity = tuple[str, int]
"""(population, step): one activity of a run; ``(INPUT, t)`` is the frame of step ``t``."""


@dataclass(frozen=True)
class TorchComputation:
    """A computation of the schedule in the module's keys: sum the incoming convolutions
    (zeros when none is present yet), this step's BatchNorm, ReLU."""

    activity: Activity
    norm: str
    step: int
    inputs: tuple[tuple[str, Activity], ...]
    """(conv key, source activity) pairs, in IR order."""
    release: tuple[Activity, ...]
    """Activities no later computation (nor the caller) needs once this one is done."""
    shape: tuple[int, int, int]
    """The population's (channels, height, width): the drive while no input is present."""


def torch_plan(ir: IR, schedule: Schedule) -> tuple[TorchComputation, ...]:
    """``schedule``'s computations with the module's conv and norm keys."""
    sizes = {p.name: (p.channels, p.height, p.width) for p in ir.populations}
    return tuple(
        TorchComputation(
            (item.population, item.step), population_key(item.population), item.step,
            tuple((projection_key(read.source, item.population), (read.source, read.source_step))
                  for read in item.inputs),
            item.release, sizes[item.population])
        for item in schedule.computations)
