"""The time rule, written once: which population computes at which step, from what.

At step ``t`` a population sums its delay-0 inputs at ``t`` and its delay-``d`` inputs at
``t - d``; a read whose source step lies before step 0 is *absent* and adds nothing (a
population with no input present yet rests at ``ReLU(BN(0))``). The input frame of step ``t``
is the pair ``("input", t)``: a still image is the same frame at every step, a clip shows its
frame ``t``. A feed-forward network is the one-step case of the same rule (no delays), so
every backend walks one schedule and has no second path for recurrent networks.

``time_schedule`` lists only the (population, step) pairs the caller's populations at the
caller's steps need, found by walking back through reads (delayed ones too): nothing after the
last kept step runs, and asking for ``VISp4`` never runs the higher areas. Computations come
step by step and, within a step, in the IR's population order, which every delay-0 projection
runs along. Each one says which activities may be dropped once it is done (their last reader,
not wanted by the caller), and ``memory`` says how many past steps a runner must hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mnc.errors import UsageError
from mnc.ir.model import IR, Projection
from mnc.text import suggest

INPUT = "input"
"""The population that is the image (or the clip's frame) itself: read, never computed."""

Pair = tuple[str, int]
"""(population, step): one activity of a run."""


@dataclass(frozen=True)
class Read:
    """One present input of a computation: a projection reading its source ``delay`` steps
    back."""

    projection: str
    """The IR projection's name (``"VISp4->VISl4"``)."""
    source: str
    """The source population (``"input"``: the frame)."""
    delay: int
    source_step: int
    """The step whose activity is read: the computation's step minus ``delay`` (never
    negative: reads before step 0 are absent)."""


@dataclass(frozen=True)
class Computation:
    """One population at one step: sum its present reads, BatchNorm (this step's statistics),
    ReLU."""

    population: str
    step: int
    inputs: tuple[Read, ...]
    """Present reads, in IR projection order."""
    absent: tuple[str, ...]
    """Projections whose source step lies before step 0: they add nothing."""
    release: tuple[Pair, ...]
    """Activities no later computation (nor the caller) needs once this one is done."""


@dataclass(frozen=True)
class Schedule:
    """A run's computations in execution order, and what the caller wants from it."""

    steps: int
    """Steps of a run (``ir.dynamics.steps``)."""
    frames: Literal["still", "clip"]
    """``ir.dynamics.input``: one image at every step, or frame ``t`` at step ``t``."""
    readout_steps: tuple[int, ...]
    """The steps the readout averages (``ir.dynamics.readout_range``)."""
    keep: tuple[str, ...]
    """Populations the caller wants."""
    kept_steps: tuple[int, ...]
    """Steps at which the caller wants them."""
    computations: tuple[Computation, ...]
    """Step by step; IR population order within a step."""
    memory: int
    """The largest delay any computation reads: past steps a runner holds (0: feed-forward)."""

    def at(self, step: int) -> tuple[Computation, ...]:
        """The computations of one step, in order."""
        return tuple(computation for computation in self.computations
                     if computation.step == step)


def time_schedule(ir: IR, keep: Sequence[str] | None = None,
                  steps: Sequence[int] | None = None) -> Schedule:
    """What computes the populations ``keep`` (default: the readout's) at ``steps`` (default:
    the readout steps). An unknown population or a step outside the run is a UsageError."""
    dynamics = ir.dynamics
    wanted = tuple(dict.fromkeys(ir.readout.populations if keep is None else keep))
    kept_steps = tuple(sorted(set(dynamics.readout_range if steps is None else steps)))
    _check(ir, wanted, kept_steps)
    incoming = _incoming(ir)
    kept = {(name, step) for name in wanted for step in kept_steps}
    needed = _needed(incoming, kept)
    order = [name for name in ir.population_names() if name != INPUT]
    computations = [(name, step) for step in range(dynamics.steps) for name in order
                    if (name, step) in needed]
    released = _released(computations, incoming, kept)
    planned = tuple(_computation(name, step, incoming[name], sorted(released.get(index, [])))
                    for index, (name, step) in enumerate(computations))
    memory = max((read.delay for item in planned for read in item.inputs), default=0)
    return Schedule(steps=dynamics.steps, frames=dynamics.input,
                    readout_steps=tuple(dynamics.readout_range), keep=wanted,
                    kept_steps=kept_steps, computations=planned, memory=memory)


def _check(ir: IR, keep: Sequence[str], steps: Sequence[int]) -> None:
    names = ir.population_names()
    for name in keep:
        if name not in names:
            raise UsageError(f"no population {name!r} in {ir.name}{suggest(name, names)}")
    for step in steps:
        if not 0 <= step < ir.dynamics.steps:
            raise UsageError(f"step {step} is outside the run of {ir.name} "
                             f"(steps 0-{ir.dynamics.steps - 1})")


def _incoming(ir: IR) -> dict[str, list[Projection]]:
    """Population -> the projections it reads, in IR order."""
    incoming: dict[str, list[Projection]] = {name: [] for name in ir.population_names()}
    for projection in ir.projections:
        incoming[projection.target].append(projection)
    return incoming


def _needed(incoming: dict[str, list[Projection]], kept: set[Pair]) -> set[Pair]:
    """``kept`` and every activity it reads, directly or not (present reads only)."""
    needed: set[Pair] = set()
    stack = list(kept)
    while stack:
        pair = stack.pop()
        if pair in needed:
            continue
        needed.add(pair)
        name, step = pair
        stack.extend((q.source, step - q.delay) for q in incoming.get(name, ())
                     if step >= q.delay)
    return needed


def _released(computations: Sequence[Pair], incoming: dict[str, list[Projection]],
              kept: set[Pair]) -> dict[int, list[Pair]]:
    """Computation index -> the activities it is the last reader of (the caller's kept
    ones never)."""
    last_reader: dict[Pair, int] = {}
    for index, (name, step) in enumerate(computations):
        for projection in incoming[name]:
            if step >= projection.delay:
                last_reader[(projection.source, step - projection.delay)] = index
    released: dict[int, list[Pair]] = {}
    for pair, index in last_reader.items():
        if pair not in kept:
            released.setdefault(index, []).append(pair)
    return released


def _computation(name: str, step: int, incoming: Sequence[Projection],
                 release: list[Pair]) -> Computation:
    inputs = tuple(Read(q.name, q.source, q.delay, step - q.delay)
                   for q in incoming if step >= q.delay)
    absent = tuple(q.name for q in incoming if step < q.delay)
    return Computation(name, step, inputs, absent, tuple(release))
