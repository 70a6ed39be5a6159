"""Bounds of a sparse-kernel program, checked before the kernel ever runs it.

The kernel (``_native/sparse_taps.c``) trusts its program: every offset in it is an index
into the per-image arena, the features row, the image or the weights. ``check_program``
walks the program as the kernel does and proves, op by op, that every read and every write
for every output position stays inside those arrays, under every instruction-set variant
(they read whole register blocks, past a grid's edge, into the slack after the last
buffer). It is independent of the IR checks in ``mnc.ir.invariants``: a program that
escapes its arena is refused here whatever produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnc.errors import BackendError
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

__all__ = ["CONV_FIELDS", "MAX_CHANNELS", "OP_CONV", "OP_COPY", "OP_END", "OP_PHASE",
           "OP_PLACE", "OP_POOL", "VARIANTS", "ProgramError", "check_program", "int32_stream"]
MAX_CHANNELS = 65536
"""The kernel keeps two pointers per output channel on the stack (1 MiB at most)."""
INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class Blocks:
    """Register blocks of one instruction-set variant (the #defines in sparse_taps.c)."""

    vector: int
    wide_rows: int
    wide_vectors: int
    narrow_rows: int
    narrow_vectors: int

    def block(self, width: int) -> tuple[int, int]:
        """(rows, columns) of the blocks a grid ``width`` wide is computed in."""
        if width > self.narrow_vectors * self.vector:
            return self.wide_rows, self.wide_vectors * self.vector
        return self.narrow_rows, self.narrow_vectors * self.vector


VARIANTS = {
    "generic": Blocks(4, 3, 4, 6, 2),
    "avx2": Blocks(8, 3, 4, 6, 2),
    "avx512": Blocks(16, 4, 4, 8, 2),
}


class ProgramError(BackendError):
    """A sparse-kernel program that would touch memory outside its arrays."""


def int32_stream(ops: list[int]) -> np.ndarray:
    """The op stream as the kernel's int32, refusing values that do not fit."""
    wide = np.asarray(ops, dtype=np.int64)
    if wide.size and (wide.min() < INT32.min or wide.max() > INT32.max):
        raise ProgramError("sparse strategy: the program holds offsets beyond int32")
    return wide.astype(np.int32)


def check_program(ops: np.ndarray, weights: int, arena: int, features: int, image: int
                  ) -> None:
    """Raise ProgramError unless the program stays inside an arena of ``arena`` floats, a
    features row of ``features``, an image of ``image`` floats and ``weights`` weights."""
    _Walk(np.asarray(ops, dtype=np.int64), weights, arena, features, image).run()


class _Walk:
    def __init__(self, ops: np.ndarray, weights: int, arena: int, features: int, image: int):
        self.ops, self.weights, self.arena = ops, weights, arena
        self.values: list[int] = ops.tolist()  # plain ints: the tap lists are walked in Python
        self.features, self.image = features, image
        self.position = 0
        self.weight_position = 0

    def fail(self, message: str) -> None:
        raise ProgramError(f"sparse strategy: refusing the kernel program (op at "
                           f"{self.position}): {message}")

    def take(self, count: int) -> list[int]:
        if count < 0 or self.position + count > len(self.ops):
            self.fail("the program ends inside an op")
        values = self.values[self.position:self.position + count]
        self.position += count
        return values

    def inside(self, what: str, lowest: int, highest: int, size: int) -> None:
        """Every element from ``lowest`` to ``highest`` lies in an array of ``size``."""
        if lowest < 0 or highest >= size:
            self.fail(f"{what} reaches [{lowest}, {highest}], outside [0, {size})")

    def positive(self, **fields: int) -> None:
        for name, value in fields.items():
            if value < 1:
                self.fail(f"{name} is {value}, expected >= 1")

    def not_negative(self, **fields: int) -> None:
        for name, value in fields.items():
            if value < 0:
                self.fail(f"{name} is {value}, expected >= 0")

    def run(self) -> None:
        handlers = {OP_PLACE: self.place, OP_PHASE: self.phase, OP_POOL: self.pool,
                    OP_COPY: self.copy, OP_CONV: self.conv}
        while True:
            [op] = self.take(1)
            if op == OP_END:
                return
            if op not in handlers:
                self.fail(f"unknown op {op}")
            handlers[op]()

    def plane(self, origin: int, channels: int, cstride: int, height: int, pitch: int,
              width: int) -> int:
        """Last element of a channels x height x width area of an arena buffer."""
        self.not_negative(origin=origin, cstride=cstride, pitch=pitch)
        return origin + (channels - 1) * cstride + (height - 1) * pitch + width - 1

    def place(self) -> None:
        channels, height, width, origin, cstride, pitch, frame = self.take(PLACE_FIELDS)
        self.positive(channels=channels, height=height, width=width)
        self.not_negative(frame=frame)
        if frame + channels * height * width > self.image:
            self.fail(f"the image is {channels}x{height}x{width} from float {frame}, the "
                      f"input holds {self.image} floats")
        last = self.plane(origin, channels, cstride, height, pitch, width)
        self.inside("the image's copy", origin, last, self.arena)

    def phase(self) -> None:
        (channels, rows, pitch, stride, source, source_cstride, source_pitch, target,
         target_cstride, target_pitch, phase_size) = self.take(PHASE_FIELDS)
        self.positive(channels=channels, rows=rows, pitch=pitch, stride=stride)
        self.not_negative(phase_size=phase_size)
        last = self.plane(source, channels, source_cstride, rows, source_pitch, pitch)
        self.inside("a phase split's source", source, last, self.arena)
        last = self.plane(target + (stride * stride - 1) * phase_size, channels,
                          target_cstride, -(-rows // stride), target_pitch,
                          -(-pitch // stride))
        self.inside("a phase split's images", target, last, self.arena)

    def pool(self) -> None:
        (channels, height, width, size, source, cstride, pitch, out, steps,
         _accumulate) = self.take(POOL_FIELDS)
        self.positive(channels=channels, height=height, width=width, size=size, steps=steps)
        last = self.plane(source, channels, cstride, height, pitch, width)
        self.inside("a pooled population", source, last, self.arena)
        self.inside("pooled features", out, out + channels * size * size - 1, self.features)

    def copy(self) -> None:
        channels, height, width, source, cstride, pitch, out = self.take(COPY_FIELDS)
        self.positive(channels=channels, height=height, width=width)
        last = self.plane(source, channels, cstride, height, pitch, width)
        self.inside("a copied population", source, last, self.arena)
        self.inside("copied activity", out, out + channels * height * width - 1,
                    self.features)

    def conv(self) -> None:
        (channels, height, width, origin, cstride, pitch, stride, phase_offset, phase_cstride,
         phase_pitch, phase_size, top, left, column_step, relu) = self.take(CONV_FIELDS)
        self.positive(channels=channels, height=height, width=width, column_step=column_step)
        if channels > MAX_CHANNELS:
            self.fail(f"{channels} channels, the kernel takes at most {MAX_CHANNELS}")
        if relu not in (0, 1):
            self.fail(f"the ReLU flag is {relu}, expected 0 or 1")
        # (a sub-pixel phase writes every column_step-th float of its rows)
        last = self.plane(origin, channels, cstride, height, pitch,
                          (width - 1) * column_step + 1)
        self.inside("a population's activity", origin, last, self.arena)
        if stride > 1 and relu and column_step == 1:  # the store also writes the phase images
            self.phase_store(channels, height, width, stride, phase_offset, phase_cstride,
                             phase_pitch, phase_size, top, left)
        starts, counts, pitches = self.tap_lists(channels)
        self.inside("the weights", 0, self.weight_position - 1, self.weights)
        self.tap_reads(starts, counts, pitches, height, width)

    def phase_store(self, channels: int, height: int, width: int, stride: int,
                    phase_offset: int, phase_cstride: int, phase_pitch: int, phase_size: int,
                    top: int, left: int) -> None:
        """The phase images a strided population's store writes lie in the arena."""
        self.not_negative(phase_offset=phase_offset, phase_cstride=phase_cstride,
                          phase_pitch=phase_pitch, phase_size=phase_size, top=top, left=left)
        first = phase_offset + (top // stride) * phase_pitch + left // stride
        last = (phase_offset + (channels - 1) * phase_cstride
                + (stride * stride - 1) * phase_size
                + ((top + height - 1) // stride) * phase_pitch + (left + width - 1) // stride)
        self.inside("a population's phase images", first, last, self.arena)

    def tap_lists(self, channels: int) -> tuple[list[int], list[int], list[int]]:
        """Walk the tap lists of ``channels`` output channels (moving past them and their
        weights): where each list's offsets start, how many there are, and its row pitch."""
        ops, end = self.values, len(self.values)
        position = self.position
        starts, counts, pitches = [], [], []
        for _ in range(channels):
            if position >= end or ops[position] < 0:
                self.fail("a channel's segment count is missing or negative")
            segments = ops[position]
            position += 1
            self.weight_position += 1
            for _ in range(segments):
                if position + 2 > end:
                    self.fail("the program ends inside a tap list")
                source_pitch, count = ops[position], ops[position + 1]
                position += 2
                if source_pitch < 1 or count < 0 or position + count > end:
                    self.fail(f"a tap list has pitch {source_pitch} and {count} taps "
                              f"({end - position} values left)")
                starts.append(position)
                counts.append(count)
                pitches.append(source_pitch)
                position += count
                self.weight_position += count
        self.position = position
        return starts, counts, pitches

    def tap_reads(self, starts: list[int], counts: list[int], pitches: list[int], height: int,
                  width: int) -> None:
        """Every tap's reads lie in the arena: tap offset + block origin (r0 * pitch + c0)
        + register block extent, for every variant of the kernel."""
        total = sum(counts)
        if not total:
            return
        reach = [self.block_reach(blocks, height, width) for blocks in VARIANTS.values()]
        count_array = np.asarray(counts)
        within = np.arange(total) - np.repeat(np.cumsum(count_array) - count_array, count_array)
        offsets = self.ops[np.repeat(np.asarray(starts), count_array) + within]
        tap_pitch = np.repeat(np.asarray(pitches, dtype=np.int64), count_array)
        extent = np.max([rows * tap_pitch + columns for rows, columns in reach], axis=0)
        self.inside("a tap's reads", int(offsets.min()), int((offsets + extent).max()) - 1,
                    self.arena)

    @staticmethod
    def block_reach(blocks: Blocks, height: int, width: int) -> tuple[int, int]:
        """(rows, columns) from a tap's offset to past the last element a variant reads:
        the last block starts at row ``r0`` and column ``c0`` and spans a whole block."""
        rows, columns = blocks.block(width)
        last_row = (height - 1) // rows * rows
        last_column = (width - 1) // columns * columns
        return last_row + rows - 1, last_column + columns
