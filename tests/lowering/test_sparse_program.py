"""The sparse kernel's program, lowered from an IR and numpy weights alone (no torch): the op
stream walks the time schedule (a pooling per readout population and readout step, a frame
placed per step of a clip), upsampled projections become one op per sub-pixel phase, and the
coarse padding they read is exactly the upsampled one's."""

from __future__ import annotations

import numpy as np
import pytest

import mnc
from mnc.ir import IR
from mnc.lowering.fresh_weights import fresh_weights
from mnc.lowering.sparse_layout import layout_buffers, upsampled_padding
from mnc.lowering.sparse_ops import (
    CONV_FIELDS,
    COPY_FIELDS,
    OP_CONV,
    OP_COPY,
    OP_END,
    OP_PHASE,
    OP_PLACE,
    OP_POOL,
    PHASE_FIELDS,
    PLACE_FIELDS,
    POOL_FIELDS,
)
from mnc.lowering.sparse_program import Program, lower_program
from tests.recurrent_irs import with_recurrence

FIXED = {OP_PLACE: PLACE_FIELDS, OP_PHASE: PHASE_FIELDS, OP_POOL: POOL_FIELDS,
         OP_COPY: COPY_FIELDS}


def _ops(program: Program) -> list[tuple[int, list[int]]]:
    """(op code, its fixed fields) in stream order, tap lists skipped."""
    values, position, found = program.ops.tolist(), 0, []
    while values[position] != OP_END:
        op = values[position]
        position += 1
        if op in FIXED:
            found.append((op, values[position:position + FIXED[op]]))
            position += FIXED[op]
            continue
        assert op == OP_CONV
        header = values[position:position + CONV_FIELDS]
        found.append((op, header))
        position += CONV_FIELDS
        for _ in range(header[0]):  # channels: segment count, then (pitch, count, taps)
            segments = values[position]
            position += 1
            for _ in range(segments):
                position += 2 + values[position + 1]
    assert position == len(values) - 1
    return found


def _recurrent(clip: bool) -> IR:
    return with_recurrence(mnc.compile_ir("tiny"), steps=3, clip=clip, readout_steps=(1, 2))


@pytest.mark.parametrize("clip", [False, True], ids=["still", "clip"])
def test_the_program_follows_the_time_schedule(clip) -> None:
    ir = _recurrent(clip)
    program = lower_program(ir, fresh_weights(ir))
    ops = _ops(program)
    places = [fields for op, fields in ops if op == OP_PLACE]
    frame = ir.input.channels * ir.input.height * ir.input.width
    # a clip places frame t at step t (steps after the last readout step never run)
    assert [fields[-1] for fields in places] == ([0, frame, 2 * frame] if clip else [0])
    pools = [fields for op, fields in ops if op == OP_POOL]
    assert len(pools) == 2 * len(ir.readout.populations)  # readout steps 1 and 2
    assert {fields[8] for fields in pools} == {2}  # each step's mean halved
    assert [fields[9] for fields in pools] == [0] * len(ir.readout.populations) + [1] * len(
        ir.readout.populations)  # the second readout step adds to the first
    pool = ir.readout.pool_size
    assert program.features == sum(ir.population(name).channels * pool * pool
                                   for name in ir.readout.populations)


def test_upsampled_projections_run_as_sub_pixel_phases() -> None:
    """Each upsampled (target, factor) adds factor^2 ops writing every factor-th element
    without ReLU, before its target's own op."""
    ir = _recurrent(clip=False)
    ops = _ops(lower_program(ir, fresh_weights(ir)))
    phases = [fields for op, fields in ops if op == OP_CONV and fields[14] == 0]
    assert phases and all(fields[13] == 2 for fields in phases)  # column step: the factor
    layout = layout_buffers(ir)
    origins = {layout.scratch[key].origin() for key in layout.scratch}
    corners = [fields[3] for fields in phases]
    assert set(corners) >= origins  # phase (0, 0) starts at each scratch grid's origin
    assert len(phases) % 4 == 0


def test_a_copies_program_holds_every_step() -> None:
    ir = _recurrent(clip=True)
    program = lower_program(ir, fresh_weights(ir), copies=["VISp4", "input"])
    copies = [fields for op, fields in _ops(program) if op == OP_COPY]
    assert program.copied_steps == 3 and len(copies) == 6
    size = {name: ir.population(name).channels * ir.population(name).height
            * ir.population(name).width for name in ("VISp4", "input")}
    assert program.features == 3 * (size["VISp4"] + size["input"])


@pytest.mark.parametrize(("kernel", "padding", "factor"), [(3, 1, 2), (19, 9, 2), (5, 2, 3),
                                                           (4, 1, 2)])
def test_upsampled_padding_covers_every_read_and_no_more(kernel, padding, factor) -> None:
    """Against the rule itself: every fine tap of every output reads coarse row
    floor((y + dy - top) / u), which the padding must reach, tightly."""
    coarse = 8
    fine = coarse * factor + 2 * padding - kernel + 1
    ir = _recurrent(clip=False)
    projection = ir.projections[-1].model_copy(update={
        "kernel_size": kernel, "padding_lrtb": (padding,) * 4, "upsample": factor})
    left, right, top, bottom = upsampled_padding(projection, (coarse, coarse), (fine, fine))
    rows = np.array([(y + dy - padding) // factor for y in range(fine) for dy in range(kernel)])
    assert (top, bottom) == (max(0, -rows.min()), max(0, rows.max() - (coarse - 1)))
    assert (left, right) == (top, bottom)
