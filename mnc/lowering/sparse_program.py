"""A MouseNet lowered to the sparse tap kernel's program: an int32 op stream and float weights.

The kernel (``mnc_backends/torch/fast/_native/sparse_taps.c``) runs one image at a time in an
arena laid out by ``sparse_layout``. A kept tap ``(ci, dy, dx)`` of projection ``q`` into
output channel ``co`` is the int32 offset of the source element under output ``(0, 0)``
plus its weight, ``q``'s BatchNorm-folded weight (``batchnorm.fold_projections``:
``weight * mask * scale``); taps are grouped per (channel, projection) into segments that
carry the source row pitch. Each output channel starts from the sum of its folded biases
(``bias * scale``, plus the shift on one of them). Ops are those of ``sparse_ops``.

Time: the program follows the one time schedule (``schedule.time_schedule``). At step ``t``
a population reads each present source at its ``source_step`` (a delayed read addresses the
slot that step was written to), with the weights folded with step ``t``'s BatchNorm
statistics (recurrent networks keep them per step); an absent read adds nothing, and a
population none of whose reads is present rests at ``ReLU(shift)``. A clip places frame
``t`` at step ``t``; a still image is placed once. The pooled readout features of the
readout steps are averaged as they are pooled.

Upsampled projections (stride 1, factor ``u``) run over the coarse source, one op per
sub-pixel phase ``(p, r)``: fine output ``(u*i + p, u*j + r)`` with fine tap ``(dy, dx)``
reads coarse ``(i + (p + dy - top) // u, j + (r + dx - left) // u)``, so the fine taps that
land on the same coarse pixel are summed into one. Each phase writes every ``u``-th element
of the target's scratch grid (no ReLU); the target's own op adds the scratch in as one tap
of weight 1 per channel.

The kernel trusts its program; the torch backend proves every program it builds in bounds
(``program_check``) before running it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mnc.ir.model import IR, Projection
from mnc.lowering.batchnorm import FoldedProjection, fold_projections, population_batchnorm
from mnc.lowering.schedule import Computation, Read, time_schedule
from mnc.lowering.sparse_layout import INPUT, Buffer, Layout, layout_buffers, tap_offsets
from mnc.lowering.sparse_ops import OP_CONV, OP_COPY, OP_END, OP_PHASE, OP_PLACE, OP_POOL


@dataclass(frozen=True)
class Program:
    ops: np.ndarray
    """int64 stream (the backend narrows it to the kernel's int32, checked)."""
    weights: np.ndarray
    """float32: per output channel of each op, its folded bias then its tap weights."""
    arena_size: int
    features: int
    """Floats of output per image."""
    taps: int
    """Multiply-accumulates per output pixel, summed over every channel and step."""
    copied_steps: int = 1
    """Steps of activity each copied population has in the output (a copies program)."""
    macs: int = 0
    """Multiply-accumulates the kernel runs per image: each op's taps times its pixels (an
    upsampled projection's sub-pixel taps over the coarse grid, and one per pixel and channel
    to add its scratch in)."""


@dataclass(frozen=True)
class _Taps:
    """Kept taps of one op: output channel, segment (projection), offset, weight, pitch."""

    channel: np.ndarray
    segment: np.ndarray
    offset: np.ndarray
    value: np.ndarray
    pitch: np.ndarray

    @staticmethod
    def join(parts: Sequence[_Taps]) -> _Taps:
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return _Taps(empty, empty, empty, np.zeros(0), empty)
        return _Taps(*(np.concatenate([getattr(part, name) for part in parts])
                       for name in ("channel", "segment", "offset", "value", "pitch")))


class _Lowering:
    """Builds one program: ops and weights appended in the order the kernel runs them."""

    def __init__(self, ir: IR, tensors: Mapping[str, np.ndarray]) -> None:
        self.ir, self.tensors = ir, tensors
        self.layout: Layout = layout_buffers(ir)
        self.ops: list[int] = []
        self.weights: list[np.ndarray] = []
        self.taps = 0
        self.macs = 0
        self.projections = {q.name: q for q in ir.projections}
        self._folded: dict[int, dict[str, FoldedProjection]] = {}

    def folded(self, step: int) -> dict[str, FoldedProjection]:
        """Every projection folded with ``step``'s BatchNorm statistics."""
        if step not in self._folded:
            with np.errstate(invalid="ignore"):  # a NaN or infinite weight stays NaN
                self._folded[step] = fold_projections(self.ir, self.tensors, step=step)
        return self._folded[step]

    def place(self, step: int) -> None:
        inp = self.layout.at(INPUT, step)
        clip = self.ir.dynamics.input == "clip"
        frame = step * inp.channels * inp.height * inp.width if clip else 0
        self.ops.extend([OP_PLACE, inp.channels, inp.height, inp.width, inp.origin(),
                         inp.cstride, inp.pitch, frame])
        if inp.stride > 1:  # the image itself is read with a stride: split it once per step
            self.ops.extend([OP_PHASE, inp.channels, inp.rows, inp.pitch, inp.stride,
                             inp.offset, inp.cstride, inp.pitch, inp.phase_offset,
                             inp.phase_cstride, inp.phase_pitch, inp.phase_size])

    def compute(self, computation: Computation) -> None:
        """The ops of one population at one step: its upsampled inputs' phases, then it."""
        name, step = computation.population, computation.step
        population = self.ir.population(name)
        folded = self.folded(step)
        bias = np.zeros(population.channels)
        direct: list[Read] = []
        upsampled: dict[int, list[Read]] = {}
        for read in computation.inputs:
            projection = self.projections[read.projection]
            bias += folded[read.projection].bias
            if projection.upsample > 1:
                upsampled.setdefault(projection.upsample, []).append(read)
            else:
                direct.append(read)
        if not computation.inputs:  # every input absent: the drive is 0, BN(0) = shift
            bias += population_batchnorm(self.tensors, name, step=step)[1]
        parts = [self.direct_taps(read, index, folded) for index, read in enumerate(direct)]
        for factor, reads in upsampled.items():
            scratch = self.layout.scratch[name, factor]
            self.phases(scratch, factor, reads, folded)
            parts.append(_scratch_taps(scratch, len(parts)))
        self.conv(self.layout.at(name, step), _Taps.join(parts), bias)

    def direct_taps(self, read: Read, index: int, folded: dict[str, FoldedProjection]
                    ) -> _Taps:
        projection = self.projections[read.projection]
        weight = folded[read.projection].weight
        # only the taps that count: nonzero, or not finite (NaN in weight * mask, as in the
        # plain path, is not a dropped tap)
        co, ci, dy, dx = np.nonzero(weight != 0)
        offsets, pitch = tap_offsets(self.layout.at(read.source, read.source_step),
                                     projection.padding_lrtb, projection.stride, ci, dy, dx)
        return _Taps(co, np.full(len(co), index), offsets, weight[co, ci, dy, dx],
                     np.full(len(co), pitch))

    def phases(self, scratch: Buffer, factor: int, reads: list[Read],
               folded: dict[str, FoldedProjection]) -> None:
        """One op per sub-pixel phase, summing the upsampled reads into the scratch grid."""
        for row_phase in range(factor):
            for column_phase in range(factor):
                parts = [self.phase_taps(read, index, folded[read.projection].weight, factor,
                                         row_phase, column_phase)
                         for index, read in enumerate(reads)]
                origin = scratch.origin() + row_phase * scratch.pitch + column_phase
                height = -(-(scratch.height - row_phase) // factor)
                width = -(-(scratch.width - column_phase) // factor)
                header = [scratch.channels, height, width, origin, scratch.cstride,
                          factor * scratch.pitch, 1, 0, 0, 0, 0, 0, 0, factor, 0]
                self.emit(header, _Taps.join(parts), np.zeros(scratch.channels))

    def phase_taps(self, read: Read, index: int, weight: np.ndarray, factor: int,
                   row_phase: int, column_phase: int) -> _Taps:
        projection: Projection = self.projections[read.projection]
        left, _, top, _ = projection.padding_lrtb
        co, ci, dy, dx = np.nonzero(weight != 0)
        values = weight[co, ci, dy, dx]
        source = self.layout.at(read.source, read.source_step)
        offsets, pitch = tap_offsets(source, (0, 0, 0, 0), 1, ci,
                                     (row_phase + dy - top) // factor,
                                     (column_phase + dx - left) // factor)
        # fine taps on the same coarse pixel of the same channel are one tap
        low = int(offsets.min(initial=0))
        span = int(offsets.max(initial=0)) - low + 1
        keys, inverse = np.unique(co * span + (offsets - low), return_inverse=True)
        merged = np.bincount(inverse.ravel(), weights=values, minlength=len(keys))
        return _Taps(keys // span, np.full(len(keys), index), keys % span + low, merged,
                     np.full(len(keys), pitch))

    def conv(self, out: Buffer, taps: _Taps, bias: np.ndarray) -> None:
        header = [out.channels, out.height, out.width, out.origin(), out.cstride, out.pitch,
                  out.stride, out.phase_offset, out.phase_cstride, out.phase_pitch,
                  out.phase_size, out.top, out.left, 1, 1]
        self.emit(header, taps, bias)

    def emit(self, header: list[int], taps: _Taps, bias: np.ndarray) -> None:
        stream, channel_weights = channel_streams(header[0], taps.channel, taps.segment,
                                                  taps.offset, taps.value, taps.pitch, bias)
        self.ops.append(OP_CONV)
        self.ops.extend(header)
        self.ops.extend(stream.tolist())
        self.weights.append(channel_weights)
        self.taps += len(taps.channel)
        self.macs += len(taps.channel) * header[1] * header[2]

    def pool(self, buffer: Buffer, offset: int, steps: int, accumulate: bool) -> None:
        pool = self.ir.readout.pool_size
        self.ops.extend([OP_POOL, buffer.channels, buffer.height, buffer.width, pool,
                         buffer.origin(), buffer.cstride, buffer.pitch, offset, steps,
                         int(accumulate)])

    def copy(self, buffer: Buffer, offset: int) -> None:
        """Copy a population's valid area out to ``offset`` of an image's output."""
        self.ops.extend([OP_COPY, buffer.channels, buffer.height, buffer.width,
                         buffer.origin(), buffer.cstride, buffer.pitch, offset])


def _scratch_taps(scratch: Buffer, segment: int) -> _Taps:
    """Each channel's summed upsampled drive, one tap of weight 1 on the same pixel."""
    channels = np.arange(scratch.channels)
    return _Taps(channels, np.full(len(channels), segment),
                 scratch.offset + channels * scratch.cstride, np.ones(len(channels)),
                 np.full(len(channels), scratch.pitch))


class _Readout:
    """The default output: each readout population pooled at each readout step, averaged."""

    def __init__(self, ir: IR) -> None:
        self.readout_steps = tuple(ir.dynamics.readout_range)
        self.offsets: dict[str, int] = {}
        self.features = 0
        pool = ir.readout.pool_size
        for name in ir.readout.populations:
            self.offsets[name] = self.features
            self.features += ir.population(name).channels * pool * pool

    def frame(self, lowering: _Lowering, step: int) -> None:
        """Nothing: the readout never reads the frame."""

    def computed(self, lowering: _Lowering, name: str, step: int) -> None:
        steps = self.readout_steps
        if name in self.offsets and step in steps:
            lowering.pool(lowering.layout.at(name, step), self.offsets[name], len(steps),
                          step != steps[0])


class _Copies:
    """The output of ``copies``: each name's ``steps x C x H x W`` floats, in order."""

    def __init__(self, ir: IR, names: Sequence[str], steps: int) -> None:
        self.ir = ir
        self.offsets: dict[str, int] = {}
        self.features = 0
        for name in names:
            self.offsets[name] = self.features
            self.features += steps * _size(ir, name)

    def frame(self, lowering: _Lowering, step: int) -> None:
        self.computed(lowering, INPUT, step)

    def computed(self, lowering: _Lowering, name: str, step: int) -> None:
        if name in self.offsets:
            lowering.copy(lowering.layout.at(name, step),
                          self.offsets[name] + step * _size(self.ir, name))


def lower_program(ir: IR, tensors: Mapping[str, np.ndarray],
                  copies: Sequence[str] | None = None) -> Program:
    """The kernel's program for ``ir`` with the weights ``tensors`` (under the contract's
    names, ``mnc.lowering.weights_format``; masks included, eps moved into the variances).

    Its output per image: the readout's pooled features (averaged over the readout steps);
    with ``copies`` (population names), only their ancestors are computed and the output is
    their activity, ``(C, H, W)`` each in that order (``(steps, C, H, W)`` for a recurrent
    network, every step)."""
    lowering = _Lowering(ir, tensors)
    steps = ir.dynamics.steps
    output: _Readout | _Copies
    if copies is None:
        schedule = time_schedule(ir)
        output = _Readout(ir)
        run = 1 + max((computation.step for computation in schedule.computations), default=0)
    else:
        copied = tuple(dict.fromkeys(copies))
        schedule = time_schedule(ir, keep=[name for name in copied if name != INPUT],
                                 steps=range(steps))
        output, run = _Copies(ir, copied, steps), steps
    for step in range(run):
        if step == 0 or ir.dynamics.input == "clip":
            lowering.place(step)
        output.frame(lowering, step)
        for computation in schedule.at(step):
            lowering.compute(computation)
            output.computed(lowering, computation.population, step)
    lowering.ops.append(OP_END)
    weights = np.concatenate(lowering.weights or [np.zeros(0)]).astype(np.float32)
    return Program(np.asarray(lowering.ops, dtype=np.int64), weights, lowering.layout.size,
                   output.features, lowering.taps, steps if copies is not None else 1,
                   lowering.macs)


def _size(ir: IR, name: str) -> int:
    population = ir.population(name)
    return population.channels * population.height * population.width


def channel_streams(channels: int, co: np.ndarray, projection: np.ndarray,
                    offsets: np.ndarray, values: np.ndarray, pitches: np.ndarray,
                    bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tap lists of every output channel, as the kernel reads them.

    ints, per channel: segment count, then per (channel, projection) segment: source row
    pitch, tap count, tap offsets (ascending). floats, per channel: bias, then tap weights in
    the same order.
    """
    order = np.lexsort((offsets, projection, co))
    co, projection, offsets, values, pitches = (a[order] for a in
                                                (co, projection, offsets, values, pitches))
    total = len(co)
    key = co * (projection.max(initial=0) + 1) + projection
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if total else np.zeros(0, int)
    counts = np.diff(np.r_[starts, total])
    segment_channel = co[starts]
    segments_per_channel = np.bincount(segment_channel, minlength=channels)
    taps_per_channel = np.bincount(co, minlength=channels)
    lengths = 1 + 2 * segments_per_channel + taps_per_channel
    channel_start = np.r_[0, np.cumsum(lengths)[:-1]]
    segment_span = np.r_[0, np.cumsum(2 + counts)]
    first_segment = np.searchsorted(segment_channel, np.arange(channels))
    header = (channel_start[segment_channel] + 1 + segment_span[:-1]
              - segment_span[first_segment[segment_channel]])
    stream = np.zeros(int(lengths.sum()), dtype=np.int64)
    stream[channel_start] = segments_per_channel
    stream[header] = pitches[starts]
    stream[header + 1] = counts
    within = np.arange(total) - np.repeat(starts, counts)
    stream[np.repeat(header, counts) + 2 + within] = offsets
    weight_start = np.r_[0, np.cumsum(1 + taps_per_channel)[:-1]]
    first_tap = np.searchsorted(co, np.arange(channels))
    channel_weights = np.zeros(channels + total)
    channel_weights[weight_start] = bias
    channel_weights[weight_start[co] + 1 + np.arange(total) - first_tap[co]] = values
    return stream, channel_weights
