"""The sparse kernel's program is proven to stay inside its arrays before it runs.

Programs are broken here directly, bypassing the IR checks, so this layer is tested on its
own: every offset the kernel would follow must be refused when it leaves its array.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
import torch

from mnc.compiler import compile_ir
from mnc.errors import BackendError
from mnc.ir.model import IR
from mnc.lowering import sparse_ops
from mnc_backends.torch.fast import native, sparse
from mnc_backends.torch.fast.program_check import (
    MAX_CHANNELS,
    OP_CONV,
    OP_END,
    OP_PLACE,
    OP_POOL,
    VARIANTS,
    ProgramError,
    check_program,
)
from mnc_backends.torch.fast.sparse import SparseExecutor, compile_program
from mnc_backends.torch.module import MouseNet
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import ALL_SPECS, ROOT, TINY_SPEC
from tests.recurrent_irs import randomised, with_recurrence

pytestmark = pytest.mark.torch

KERNEL = ROOT / "backends" / "torch" / "fast" / "_native" / "sparse_taps.c"
PLACE_FIELDS = 1 + sparse_ops.PLACE_FIELDS  # the op code, then its fields
CONV_HEADER = 1 + sparse_ops.CONV_FIELDS


def _check(program, *, weights: int | None = None, image: int = 3 * 32 * 32) -> None:  # noqa: ANN001
    check_program(program.ops, len(program.weights) if weights is None else weights,
                  program.arena_size, program.features, image)


@pytest.fixture(scope="module")
def tiny_program():  # noqa: ANN201
    model, _ = model_pair(TINY_SPEC)
    program = compile_program(model)
    assert program.ops[0] == OP_PLACE and program.ops[PLACE_FIELDS] == OP_CONV
    return program


def test_block_geometry_matches_the_kernel_source():
    text = KERNEL.read_text()
    pattern = (r"#define SUFFIX (\w+)\s+#define VL (\d+)\s+#define TARGET.*\s+#define WIDE_R "
               r"(\d+)\s+#define WIDE_NV (\d+)\s+#define NARROW_R (\d+)\s+#define NARROW_NV (\d+)")
    found = {name: tuple(map(int, numbers)) for name, *numbers in re.findall(pattern, text)}
    assert found == {name: (b.vector, b.wide_rows, b.wide_vectors, b.narrow_rows,
                            b.narrow_vectors) for name, b in VARIANTS.items()}


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda path: path.stem)
def test_programs_of_every_shipped_spec_pass(spec):
    model, _ = model_pair(spec)
    compile_program(model)  # checks itself
    compile_program(model, copies=[p.name for p in model.ir.populations])


def _edit(index: int, value: int) -> Callable[[np.ndarray, object], None]:
    def edit(ops: np.ndarray, program) -> None:  # noqa: ANN001
        ops[index] = value

    return edit


FIRST_TAP = PLACE_FIELDS + CONV_HEADER + 3  # segment count, pitch, tap count, then taps
BROKEN = {
    "tap before the arena": (_edit(FIRST_TAP, -1), "a tap's reads"),
    "tap past the arena": (lambda ops, p: ops.__setitem__(FIRST_TAP, p.arena_size),
                           "a tap's reads"),
    "zero source pitch": (_edit(FIRST_TAP - 2, 0), "pitch 0"),
    "tap list longer than the program": (_edit(FIRST_TAP - 1, 10**9), "taps"),
    "activity written past the arena": (
        lambda ops, p: ops.__setitem__(PLACE_FIELDS + 4, p.arena_size - 1),
        "a population's activity"),
    "negative row pitch": (_edit(PLACE_FIELDS + 6, -40), "pitch is -40"),
    "too many channels": (_edit(PLACE_FIELDS + 1, MAX_CHANNELS + 1), "channels"),
    "image larger than the input": (_edit(3, 33), "the image is"),
    "unknown op": (_edit(PLACE_FIELDS, 9), "unknown op 9"),
    "no end": (lambda ops, p: ops.__setitem__(len(ops) - 1, OP_POOL), "ends inside an op"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_program_is_refused(tiny_program, case):
    edit, message = BROKEN[case]
    ops = tiny_program.ops.copy()
    edit(ops, tiny_program)
    with pytest.raises(ProgramError, match=re.escape(message)):
        check_program(ops, len(tiny_program.weights), tiny_program.arena_size,
                      tiny_program.features, 3 * 32 * 32)


def test_pooled_features_written_past_their_row_are_refused(tiny_program):
    ops = tiny_program.ops.copy()
    pools = [i for i in range(len(ops) - 10) if ops[i] == OP_POOL and ops[i + 4] == 4]
    ops[pools[-1] + 8] = tiny_program.features - 1
    with pytest.raises(ProgramError, match="pooled features"):
        check_program(ops, len(tiny_program.weights), tiny_program.arena_size,
                      tiny_program.features, 3 * 32 * 32)


def test_too_few_weights_are_refused(tiny_program):
    _check(tiny_program)
    with pytest.raises(ProgramError, match="the weights"):
        _check(tiny_program, weights=len(tiny_program.weights) - 1)
    assert tiny_program.ops[-1] == OP_END


def _escaping_model() -> MouseNet:
    clean, _ = model_pair(TINY_SPEC)
    data = clean.ir.model_dump()
    data["projections"][12]["padding_lrtb"] = (-200000, 0, -200000, 0)
    return MouseNet(IR.model_validate(data)).eval()  # in memory: no file check ran


@pytest.mark.skipif(not native.available(), reason="sparse kernel not built")
def test_in_memory_ir_that_escapes_the_arena_is_refused_before_the_kernel_runs():
    model = _escaping_model()
    with torch.inference_mode(), pytest.raises(BackendError,
                                               match=r"projections\[12\]\.padding_lrtb"):
        SparseExecutor(model).pooled_features(images_for(model, 1))


@pytest.mark.skipif(not native.available(), reason="sparse kernel not built")
def test_program_check_stands_without_the_ir_check(monkeypatch):
    """Defense in depth: with the IR invariants switched off, the program check alone
    refuses the same network."""
    monkeypatch.setattr(sparse, "ir_problems", lambda ir: [])
    model = _escaping_model()
    with torch.inference_mode(), pytest.raises(ProgramError, match="a tap's reads"):
        SparseExecutor(model).pooled_features(images_for(model, 1))


def test_op_codes_match_the_kernel_enum():
    """The op codes are defined once in Python (``mnc.lowering.sparse_ops``); the kernel's
    ``enum`` must give each the same value."""
    [body] = re.findall(r"enum \{ (OP_END = 0.*?) \};", KERNEL.read_text())
    declared = {name: int(value) for name, value in re.findall(r"(OP_\w+) = (\d+)", body)}
    assert declared == sparse_ops.OPCODES


def test_conv_header_matches_the_kernel_struct():
    assert re.search(rf"#define OUTPUT_FIELDS {sparse_ops.CONV_FIELDS}\b", KERNEL.read_text())


@pytest.fixture(scope="module")
def clip_program():  # noqa: ANN201
    """A recurrent network on clips with upsampled feedback: frames placed per step and
    sub-pixel phase ops."""
    ir = with_recurrence(compile_ir(TINY_SPEC), steps=3, clip=True)
    return compile_program(randomised(ir).eval()), 3 * 3 * 32 * 32


FIXED_FIELDS = {OP_PLACE: sparse_ops.PLACE_FIELDS, sparse_ops.OP_PHASE: sparse_ops.PHASE_FIELDS,
                OP_POOL: sparse_ops.POOL_FIELDS, sparse_ops.OP_COPY: sparse_ops.COPY_FIELDS}


def _positions(ops: np.ndarray) -> list[tuple[int, int]]:
    """(op code, position of its first field) of every op, tap lists walked over."""
    values, position, found = ops.tolist(), 0, []
    while values[position] != OP_END:
        op = values[position]
        found.append((op, position + 1))
        position += 1 + FIXED_FIELDS.get(op, 0)
        if op == OP_CONV:
            channels = values[position]
            position += sparse_ops.CONV_FIELDS
            for _ in range(channels):
                segments = values[position]
                position += 1
                for _ in range(segments):
                    position += 2 + values[position + 1]
    return found


def _refused(program, ops: np.ndarray, image: int, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ProgramError, match=re.escape(message)):
        check_program(ops, len(program.weights), program.arena_size, program.features, image)


def test_a_frame_past_the_clip_is_refused(clip_program):
    program, image = clip_program
    _check(program, image=image)
    frame = 3 * 32 * 32
    places = [at for op, at in _positions(program.ops) if op == OP_PLACE]
    assert [int(program.ops[at + 6]) for at in places] == [0, frame, 2 * frame]
    ops = program.ops.copy()
    ops[places[-1] + 6] = image - frame + 1  # one float too far
    _refused(program, ops, image, "the image is 3x32x32 from float")


def test_sub_pixel_phase_writes_are_bounded_by_their_column_step(clip_program):
    program, image = clip_program
    phases = [at for op, at in _positions(program.ops)
              if op == OP_CONV and program.ops[at + 14] == 0]  # no ReLU: a partial drive
    assert phases and all(program.ops[at + 13] == 2 for at in phases)
    for column, value, message in ((13, program.arena_size, "a population's activity"),
                                   (13, 0, "column_step is 0"),
                                   (14, 7, "the ReLU flag is 7")):
        ops = program.ops.copy()
        ops[phases[0] + column] = value
        _refused(program, ops, image, message)
