"""Which projections close loops in time, and how often each one computes in a run.

A projection with ``delay >= 1`` is recurrent. By population order (the order a step computes
in) it is *feedback* when it reaches an earlier population, *lateral* when it returns to its
own source, and *delayed forward* otherwise. A projection with delay ``d`` reads its source at
step ``t - d``, which is zero before step 0: at steps ``t < d`` it adds nothing, so it computes
at ``steps - d`` of the ``steps`` steps. How often each projection computes is counted off the
time schedule (``mnc.lowering.schedule``) of a whole run, the rule every backend executes.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from mnc.ir.model import IR, Projection
from mnc.lowering.schedule import Schedule, time_schedule

Kind = Literal["feedforward", "delayed forward", "feedback", "lateral"]
RECURRENT_KINDS: tuple[Kind, ...] = ("feedback", "lateral", "delayed forward")


def projection_kind(ir: IR, projection: Projection) -> Kind:
    if projection.delay == 0:
        return "feedforward"
    if projection.source == projection.target:
        return "lateral"
    order = {name: index for index, name in enumerate(ir.population_names())}
    if order[projection.target] < order[projection.source]:
        return "feedback"
    return "delayed forward"


def projection_runs(ir: IR, schedule: Schedule | None = None) -> dict[str, int]:
    """How many computations read each projection, by name: in ``schedule``, or in a whole
    run (every population at every step), where that is ``steps - delay``."""
    if schedule is None:
        schedule = time_schedule(ir, ir.population_names(), range(ir.dynamics.steps))
    runs = {projection.name: 0 for projection in ir.projections}
    for computation in schedule.computations:
        for read in computation.inputs:
            runs[read.projection] += 1
    return runs


def active_steps(ir: IR, projection: Projection) -> int:
    """Steps of a run at which the projection's source holds activity (``steps - delay``)."""
    return projection_runs(ir)[projection.name]


def recurrent_counts(ir: IR) -> dict[Kind, int]:
    """Recurrent projections by kind (every kind present, zero where none)."""
    counts = Counter(projection_kind(ir, projection) for projection in ir.projections)
    return {kind: counts[kind] for kind in RECURRENT_KINDS}


def describe_recurrence(ir: IR) -> str:
    """``4 steps (still input, readout steps 2-3); 3 recurrent projections (2 feedback,
    1 lateral)``, for summaries; the feed-forward network gives ``1 step, feed-forward``."""
    dynamics = ir.dynamics
    steps = f"{dynamics.steps} step{'s' if dynamics.steps != 1 else ''}"
    counts = recurrent_counts(ir)
    total = sum(counts.values())
    if not ir.is_recurrent:
        return f"{steps}, feed-forward"
    readout = dynamics.readout_range
    read = (f"readout step {readout.start}" if len(readout) == 1
            else f"readout steps {readout.start}-{readout.stop - 1}")
    kinds = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)
    plural = "s" if total != 1 else ""
    return (f"{steps} ({dynamics.input} input, {read}); {total} recurrent projection{plural}"
            + (f" ({kinds})" if kinds else ""))
