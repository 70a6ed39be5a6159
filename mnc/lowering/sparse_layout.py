"""Where the sparse kernel keeps each population's activity: one arena of floats per image.

Every population has a zero-padded buffer (``channels x (top + H + bottom) x (left + W +
right)``, padding the largest any outgoing projection needs); a population read with stride
``s`` also gets ``s*s`` phase images. A recurrent network keeps ``d + 1`` such buffers (slots)
of a population read ``d`` steps late, step ``t`` in slot ``t % (d + 1)``, so a delayed read
finds its step still there. A target of upsampled projections has a scratch grid of its own
size (no padding) that their sub-pixel phases fill before its own op adds it in.

``tap_offsets`` turns kept taps into arena offsets of the element under output ``(0, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mnc.errors import BackendError
from mnc.ir.model import IR, Projection

SLACK = 64 * 1024
"""Floats after the last buffer: row blocks past a grid's edge read (and discard) up to here."""
ALIGN = 16
INPUT = "input"


@dataclass
class Buffer:
    """A population's padded buffer and its phase images, as offsets into the arena."""

    channels: int
    height: int
    width: int
    top: int
    left: int
    rows: int
    pitch: int
    offset: int = 0
    stride: int = 1
    """Phase split factor (1: none)."""
    phase_offset: int = 0
    phase_rows: int = 0
    phase_pitch: int = 0

    @property
    def cstride(self) -> int:
        return self.rows * self.pitch

    @property
    def phase_cstride(self) -> int:
        return self.phase_rows * self.phase_pitch

    @property
    def phase_size(self) -> int:
        return self.channels * self.phase_cstride

    def origin(self, channel: int = 0) -> int:
        """Arena offset of the first valid (unpadded) element of a channel."""
        return self.offset + channel * self.cstride + self.top * self.pitch + self.left


@dataclass
class Layout:
    buffers: dict[tuple[str, int], Buffer]
    """By (population, slot)."""
    slots: dict[str, int]
    scratch: dict[tuple[str, int], Buffer] = field(default_factory=dict)
    """By (target, upsampling factor): the summed drive of its upsampled projections."""
    size: int = 0
    """Floats per arena, slack included."""

    def at(self, population: str, step: int) -> Buffer:
        """The buffer holding ``population``'s activity of ``step``."""
        return self.buffers[population, step % self.slots[population]]


def align(value: int) -> int:
    return (value + ALIGN - 1) // ALIGN * ALIGN


def upsampled_padding(projection: Projection, source: tuple[int, int],
                      target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding of the coarse source that every sub-pixel
    phase of an upsampled stride-1 projection reads into: fine row ``u*i + p`` with tap
    ``dy`` reads coarse row ``i + (p + dy - top) // u``, and the fine zero padding beyond
    the ``u*H`` upsampled rows is exactly the coarse padding beyond ``H``."""
    left, right, top, bottom = projection.padding_lrtb
    factor, kernel = projection.upsample, projection.kernel_size

    def axis(before: int, coarse: int, fine: int) -> tuple[int, int]:
        last = max((-(-(fine - p) // factor) - 1) + (p + kernel - 1 - before) // factor
                   for p in range(factor))
        return max(0, -(-before // factor)), max(0, last - (coarse - 1))

    pad_left, pad_right = axis(left, source[1], target[1])
    pad_top, pad_bottom = axis(top, source[0], target[0])
    return pad_left, pad_right, pad_top, pad_bottom


def layout_buffers(ir: IR) -> Layout:
    """Buffers (slots) of every population, scratch grids, and the arena size (floats)."""
    reads = _reads(ir)
    buffers: dict[tuple[str, int], Buffer] = {}
    cursor = 0
    for population in ir.populations:
        name = population.name
        stride = _phase_stride(name, reads.strides[name])
        for slot in range(reads.slots[name]):
            buffer, cursor = _buffer(population.channels, population.height, population.width,
                                     reads.pads[name], stride, cursor)
            buffers[name, slot] = buffer
    scratch: dict[tuple[str, int], Buffer] = {}
    for name, factor in reads.scratch:
        grid = ir.population(name)
        scratch[name, factor], cursor = _buffer(grid.channels, grid.height, grid.width,
                                                  [0, 0, 0, 0], 1, cursor)
    return Layout(buffers, reads.slots, scratch, cursor + SLACK)


@dataclass
class _Reads:
    """How the projections read each population: what its buffer must hold."""

    pads: dict[str, list[int]]
    """The widest padding (left, right, top, bottom) any reader needs."""
    strides: dict[str, set[int]]
    slots: dict[str, int]
    """Steps of activity held: one more than the longest delay a reader has."""
    scratch: list[tuple[str, int]]
    """(target, factor) of each upsampled grid, in projection order."""


def _reads(ir: IR) -> _Reads:
    reads = _Reads({p.name: [0, 0, 0, 0] for p in ir.populations},
                   {p.name: set() for p in ir.populations},
                   {p.name: 1 for p in ir.populations}, [])
    for q in ir.projections:
        source, target = ir.population(q.source), ir.population(q.target)
        padding = (upsampled_padding(q, (source.height, source.width),
                                     (target.height, target.width))
                   if q.upsample > 1 else q.padding_lrtb)
        reads.pads[q.source] = [max(a, b) for a, b in zip(reads.pads[q.source], padding,
                                                           strict=True)]
        reads.strides[q.source].add(q.stride)
        reads.slots[q.source] = max(reads.slots[q.source], q.delay + 1)
        if q.upsample > 1 and (q.target, q.upsample) not in reads.scratch:
            if q.stride != 1:
                raise BackendError(f"sparse strategy: projection {q.name!r} upsamples and "
                                   f"strides ({q.stride}); only stride 1 upsamples")
            reads.scratch.append((q.target, q.upsample))
    if ir.dynamics.input == "still":
        reads.slots[INPUT] = 1  # the same image at every step
    return reads


def _phase_stride(name: str, strides: set[int]) -> int:
    """The one stride above 1 a population is read with (its phase images), else 1."""
    phased = sorted(s for s in strides if s > 1)
    if len(phased) > 1:
        raise BackendError(f"sparse strategy: population {name!r} is read with "
                           f"several strides {phased}; only one stride above 1 is supported")
    return phased[0] if phased else 1


def _buffer(channels: int, height: int, width: int, padding: list[int], stride: int,
            cursor: int) -> tuple[Buffer, int]:
    """A buffer (with its phase images when ``stride > 1``) at ``cursor``, and the cursor
    after it."""
    left, right, top, bottom = padding
    rows, pitch = top + height + bottom, left + width + right
    buffer = Buffer(channels, height, width, top, left, rows, pitch, offset=cursor)
    cursor = align(cursor + channels * buffer.cstride)
    if stride > 1:
        buffer.stride = stride
        buffer.phase_rows = -(-rows // stride)
        buffer.phase_pitch = -(-pitch // stride)
        buffer.phase_offset = cursor
        cursor = align(cursor + stride * stride * buffer.phase_size)
    return buffer, cursor


def tap_offsets(buffer: Buffer, padding: tuple[int, int, int, int], stride: int,
                ci: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> tuple[np.ndarray, int]:
    """(arena offsets of the taps for output (0, 0), row pitch) in a source buffer; ``dy``
    and ``dx`` count from the top left of the kernel, which sits ``padding`` outside."""
    ry = buffer.top - padding[2] + dy
    rx = buffer.left - padding[0] + dx
    if stride == 1:
        offsets = buffer.offset + ci * buffer.cstride + ry * buffer.pitch + rx
        return offsets, buffer.pitch
    phase = (ry % stride) * stride + rx % stride
    offsets = (buffer.phase_offset + phase * buffer.phase_size + ci * buffer.phase_cstride
               + (ry // stride) * buffer.phase_pitch + rx // stride)
    return offsets, buffer.phase_pitch
