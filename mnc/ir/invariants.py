"""Invariants every resolved IR satisfies, checked on IRs that come from files.

The compiler's passes guarantee these for the IRs they derive; an IR read from a file (a
saved model, a checkpoint, IR JSON) is only as good as the file, and its content hash is no
protection: anyone can recompute it. Backends build layers, masks and the native kernel's
memory layout from these numbers, so ``ir_problems`` runs before anything is built.

Each problem names the field (``projections[12].padding_lrtb``) and what was expected. The
checks are pure and need nothing beyond the IR. The range of each field on its own is part of
the IR models (``mnc.ir.bounds``, checked when the IR is validated); what is here relates
fields to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnc.errors import UserFileError
from mnc.ir.keys import key_collisions, population_key, projection_key
from mnc.ir.model import IR, IR_VERSION, Projection
from mnc.text import unsafe_character

INPUT = "input"
SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class IRProblem:
    field: str
    """Path of the offending field, e.g. ``projections[12].padding_lrtb``."""
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def ir_problems(ir: IR) -> list[IRProblem]:
    """Every way ``ir`` breaks the invariants of a compiled IR (empty when it keeps them)."""
    problems: list[IRProblem] = []
    if ir.version != IR_VERSION:
        problems.append(IRProblem("version", f"is {ir.version}, this mnc reads {IR_VERSION}"))
    problems += _population_problems(ir)
    problems += _projection_problems(ir)
    problems += _readout_problems(ir)
    problems += _dynamics_problems(ir)
    problems += _text_problems(ir)
    return problems


def _text_problems(ir: IR) -> list[IRProblem]:
    """Names and citations are printed on terminals: the characters free text of a spec may
    not hold (controls, bidirectional overrides) are refused here too."""
    texts: list[tuple[str, str]] = [("name", ir.name),
                                    ("provenance.spec_name", ir.provenance.spec_name)]
    texts += [(f"provenance.sources[{key!r}]", f"{key}{value}")
              for key, value in ir.provenance.sources.items()]
    texts += [(f"provenance.notes[{index}]", note)
              for index, note in enumerate(ir.provenance.notes)]
    texts += [(f"populations[{index}].name", population.name)
              for index, population in enumerate(ir.populations)]
    texts += [(f"projections[{index}].name", projection.name)
              for index, projection in enumerate(ir.projections)]
    problems = []
    for where, text in texts:
        found = unsafe_character(text)
        if found is not None:
            problems.append(IRProblem(where, f"holds the character {found!r}; expected "
                                             f"printable text"))
    return problems


def check_ir(ir: IR, origin: str) -> None:
    """Raise one UserFileError naming ``origin`` and the offending fields, if any."""
    problems = ir_problems(ir)
    if not problems:
        return
    shown = [f"  {problem}" for problem in problems[:SHOWN_PROBLEMS]]
    more = len(problems) - SHOWN_PROBLEMS
    if more > 0:
        shown.append(f"  ... and {more} more")
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    raise UserFileError(f"{origin}: not a valid mnc IR ({count}; a compiled IR never has "
                        f"them, so the file was edited or corrupted):\n" + "\n".join(shown))


def _population_problems(ir: IR) -> list[IRProblem]:
    problems = []
    populations = ir.populations
    if not populations or populations[0].name != INPUT:
        found = repr(populations[0].name) if populations else "nothing"
        problems.append(IRProblem("populations[0]", f"is {found}, expected the image "
                                                    f"population {INPUT!r} first"))
    first_index: dict[str, int] = {}
    for index, population in enumerate(populations):
        where = f"populations[{index}]"
        if population.name in first_index:
            problems.append(IRProblem(f"{where}.name", f"{population.name!r} repeats "
                                      f"populations[{first_index[population.name]}]"))
        first_index.setdefault(population.name, index)
        if population.name == INPUT:
            image = (ir.input.channels, ir.input.height, ir.input.width)
            shape = (population.channels, population.height, population.width)
            if shape != image:
                problems.append(IRProblem(where, f"input population is {shape} (channels, "
                                                 f"height, width), the IR's input is {image}"))
    for first, later, key in key_collisions(populations, lambda p: population_key(p.name)):
        if populations[first].name != populations[later].name:
            problems.append(IRProblem(
                f"populations[{later}].name",
                f"{populations[later].name!r} and {populations[first].name!r} "
                f"(populations[{first}]) share the module key {key!r}"))
    return problems


def _projection_problems(ir: IR) -> list[IRProblem]:
    problems: list[IRProblem] = []
    order: dict[str, int] = {}
    for index, population in enumerate(ir.populations):
        order.setdefault(population.name, index)
    seen: dict[tuple[str, str], int] = {}
    for index, projection in enumerate(ir.projections):
        where = f"projections[{index}]"
        pair = (projection.source, projection.target)
        if pair in seen:
            problems.append(IRProblem(where, f"{projection.name} repeats "
                                             f"projections[{seen[pair]}]"))
        seen.setdefault(pair, index)
        problems += _one_projection_problems(ir, projection, where, order)
    collisions = key_collisions(ir.projections, lambda q: projection_key(q.source, q.target))
    for first, later, key in collisions:
        if ir.projections[first].name != ir.projections[later].name:
            problems.append(IRProblem(
                f"projections[{later}]",
                f"{ir.projections[later].name} and {ir.projections[first].name} "
                f"(projections[{first}]) share the module key {key!r}"))
    incoming = {projection.target for projection in ir.projections}
    for index, population in enumerate(ir.populations):
        if population.name != INPUT and population.name not in incoming:
            problems.append(IRProblem(f"populations[{index}]", f"{population.name!r} has no "
                                      f"incoming projection; only {INPUT!r} may be a source"))
    return problems


def _one_projection_problems(ir: IR, projection: Projection, where: str,
                             order: dict[str, int]) -> list[IRProblem]:
    """Ends, padding and delay of one projection; with both ends known, its direction and
    grids (``order``: each population's first index)."""
    problems = []
    pair = (projection.source, projection.target)
    for end, field in zip(pair, ("source", "target"), strict=True):
        if end not in order:
            problems.append(IRProblem(f"{where}.{field}", f"no population {end!r}"))
    problems += _padding_problems(projection, where)
    if projection.delay >= ir.dynamics.steps:
        problems.append(IRProblem(f"{where}.delay", f"is {projection.delay}, the network "
                                  f"runs {ir.dynamics.steps} step(s): expected a delay "
                                  f"below the number of steps"))
    if any(end not in order for end in pair):
        return problems
    if projection.delay == 0 and order[projection.source] >= order[projection.target]:
        problems.append(IRProblem(where, f"{projection.name} has delay 0 but does not run "
                                         f"forward: the source must be listed before the "
                                         f"target"))
    return problems + _grid_problems(ir, projection, where)


def _padding_problems(projection: Projection, where: str) -> list[IRProblem]:
    problems = []
    kernel, stride = projection.kernel_size, projection.stride
    # Zero padding, except the crop the compiler makes when the kernel is narrower than the
    # stride; never more than the kernel can use.
    lowest = min(0, kernel - stride)
    if any(not lowest <= pad <= max(kernel - 1, 0) for pad in projection.padding_lrtb):
        problems.append(IRProblem(f"{where}.padding_lrtb", f"is {projection.padding_lrtb}, "
                                  f"expected values from {lowest} to {max(kernel - 1, 0)} "
                                  f"for a {kernel}x{kernel} kernel with stride {stride}"))
    return problems


def _grid_problems(ir: IR, projection: Projection, where: str) -> list[IRProblem]:
    """Channels and grids of both ends agree with the convolution's output size formula."""
    problems = []
    source, target = ir.population(projection.source), ir.population(projection.target)
    if projection.in_channels != source.channels:
        problems.append(IRProblem(f"{where}.in_channels", f"is {projection.in_channels}, the "
                                  f"source {source.name!r} has {source.channels} channels"))
    if projection.out_channels != target.channels:
        problems.append(IRProblem(f"{where}.out_channels", f"is {projection.out_channels}, the "
                                  f"target {target.name!r} has {target.channels} channels"))
    up = projection.upsample
    left, right, top, bottom = projection.padding_lrtb
    for axis, size, before, after, expected in (("height", source.height, top, bottom,
                                                 target.height),
                                                ("width", source.width, left, right,
                                                 target.width)):
        span = size * up + before + after - projection.kernel_size
        output = span // projection.stride + 1 if span >= 0 else 0
        if output != expected:
            scaled = f"{size} x {up}" if up != 1 else f"{size}"
            problems.append(IRProblem(
                f"{where}.padding_lrtb",
                f"gives a {axis} of {output} px (({scaled} + {before} + {after} - "
                f"{projection.kernel_size}) // {projection.stride} + 1), the target "
                f"{target.name!r} has {expected}"))
    return problems


def _dynamics_problems(ir: IR) -> list[IRProblem]:
    dynamics = ir.dynamics
    if dynamics.readout_steps is not None:
        first, last = dynamics.readout_steps
        if not 0 <= first <= last < dynamics.steps:
            return [IRProblem("dynamics.readout_steps", f"is {list(dynamics.readout_steps)}, "
                              f"expected [first, last] with 0 <= first <= last < "
                              f"{dynamics.steps} (the steps)")]
    return []


def _readout_problems(ir: IR) -> list[IRProblem]:
    problems = []
    readout = ir.readout
    if not readout.populations:
        problems.append(IRProblem("readout.populations", "is empty"))
    known = {population.name: population for population in ir.populations}
    channels = 0
    for index, name in enumerate(readout.populations):
        if name not in known:
            problems.append(IRProblem(f"readout.populations[{index}]", f"no population "
                                                                       f"{name!r}"))
        elif name in readout.populations[:index]:
            problems.append(IRProblem(f"readout.populations[{index}]", f"{name!r} repeats"))
        else:
            channels += known[name].channels
    expected = channels * readout.pool_size**2
    if not problems and readout.features != expected:
        problems.append(IRProblem("readout.features", f"is {readout.features}, expected "
                                  f"{expected} (channels of the readout populations x "
                                  f"pool_size^2)"))
    return problems
