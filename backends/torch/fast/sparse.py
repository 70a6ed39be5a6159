"""The ``sparse`` strategy: compile a MouseNet into a program for the native tap kernel.

Layout (per worker thread, one image at a time): every population has a zero-padded buffer
(``channels x (top + H + bottom) x (left + W + right)``, padding the largest any outgoing
projection needs); a population read with stride ``s`` also gets ``s*s`` phase images. A kept
tap ``(ci, dy, dx)`` of projection ``q`` into output channel ``co`` is the int32 offset of the
source element under output ``(0, 0)`` plus its weight, ``q``'s BatchNorm-folded weight
(``mnc.lowering.batchnorm.fold_projections``: ``weight * mask * scale``); taps are grouped per
(channel, projection) into segments that carry the source row pitch. Each output channel
starts from the sum of its folded biases (``bias * scale``, plus the shift on one of them).

The kernel returns the pooled readout features; the classifier runs in torch. A features
program (``compile_program(model, copies=...)``) instead computes only the ancestors of the
requested populations and copies their activity out (``MouseNet.features``). Programs are
held by the model's ``PreparedCache``, rebuilt when the weights change.

The kernel trusts its program, so a program is built only from an IR that keeps the
compiler's invariants (``mnc.ir.invariants``) and is then proven, independently, to keep every
read and write inside its arrays (``program_check``).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mnc.errors import BackendError
from mnc.ir.invariants import ir_problems
from mnc.ir.model import IR
from mnc.lowering.batchnorm import FoldedProjection
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.prepared import PreparedCache
from mnc_backends.torch.fast.program_check import check_program, int32_stream
from mnc_backends.torch.fast.shared import all_finite, folded_projections
from mnc_backends.torch.module import INPUT, MouseNet, build_plan

OP_END, OP_PLACE, OP_CONV, OP_PHASE, OP_POOL, OP_COPY = 0, 1, 2, 3, 4, 5
SLACK = 64 * 1024
"""Floats after the last buffer: row blocks past a grid's edge read (and discard) up to here."""
ALIGN = 16


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


def _align(value: int) -> int:
    return (value + ALIGN - 1) // ALIGN * ALIGN


def layout_buffers(ir: IR) -> tuple[dict[str, Buffer], int]:
    """Buffers for every population and the arena size (floats)."""
    pads = {p.name: [0, 0, 0, 0] for p in ir.populations}
    strides: dict[str, set[int]] = {p.name: set() for p in ir.populations}
    for q in ir.projections:
        pads[q.source] = [max(a, b) for a, b in zip(pads[q.source], q.padding_lrtb, strict=True)]
        strides[q.source].add(q.stride)
    buffers: dict[str, Buffer] = {}
    cursor = 0
    for population in ir.populations:
        left, right, top, bottom = pads[population.name]
        rows, pitch = top + population.height + bottom, left + population.width + right
        buffer = Buffer(population.channels, population.height, population.width, top, left,
                        rows, pitch, offset=cursor)
        cursor = _align(cursor + buffer.channels * buffer.cstride)
        phased = sorted(s for s in strides[population.name] if s > 1)
        if len(phased) > 1:
            raise BackendError(f"sparse strategy: population {population.name!r} is read with "
                               f"several strides {phased}; only one stride above 1 is supported")
        if phased:
            stride = phased[0]
            buffer.stride = stride
            buffer.phase_rows = -(-rows // stride)
            buffer.phase_pitch = -(-pitch // stride)
            buffer.phase_offset = cursor
            cursor = _align(cursor + stride * stride * buffer.phase_size)
        buffers[population.name] = buffer
    return buffers, cursor + SLACK


def _tap_offsets(buffer: Buffer, padding: tuple[int, int, int, int], stride: int,
                 ci: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> tuple[np.ndarray, int]:
    """(arena offsets of the taps for output (0, 0), row pitch) in a source buffer."""
    ry = buffer.top - padding[2] + dy
    rx = buffer.left - padding[0] + dx
    if stride == 1:
        offsets = buffer.offset + ci * buffer.cstride + ry * buffer.pitch + rx
        return offsets, buffer.pitch
    phase = (ry % stride) * stride + rx % stride
    offsets = (buffer.phase_offset + phase * buffer.phase_size + ci * buffer.phase_cstride
               + (ry // stride) * buffer.phase_pitch + rx // stride)
    return offsets, buffer.phase_pitch


@dataclass(frozen=True)
class Program:
    ops: np.ndarray
    """int32 stream the kernel executes."""
    weights: np.ndarray
    """float32: per output channel, its folded bias then its tap weights."""
    arena_size: int
    features: int
    taps: int
    """Kept taps (multiply-accumulates per output pixel, summed over channels)."""


def _copy_offsets(ir: IR, copies: Sequence[str]) -> tuple[dict[str, int], int]:
    """Where each copied population's (C, H, W) activity starts in an image's output."""
    offsets, cursor = {}, 0
    for name in dict.fromkeys(copies):
        population = ir.population(name)
        offsets[name] = cursor
        cursor += population.channels * population.height * population.width
    return offsets, cursor


def compile_program(model: MouseNet, copies: Sequence[str] | None = None,
                    folded: dict[str, FoldedProjection] | None = None) -> Program:
    """Lower a MouseNet (eval BatchNorm) into the kernel's program and weights.

    With ``copies`` (population names), the program computes only their ancestors and its
    output per image is their activity, (C, H, W) each, in that order, instead of the pooled
    readout features. ``folded``: the model's ``folded_projections``, if already made.
    """
    ir = model.ir
    if folded is None:
        folded = folded_projections(model)
    problems = ir_problems(ir)  # an IR built in memory has met no file check
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BackendError(f"sparse strategy: IR {ir.name!r} is not one the compiler makes, so "
                           f"the kernel will not run it: {problems[0]}{more}")
    buffers, arena_size = layout_buffers(ir)
    if arena_size >= 2**31:
        raise BackendError(f"sparse strategy: IR {ir.name!r} needs {arena_size} floats of "
                           f"activations per image, more than int32 offsets address")
    incoming: dict[str, list] = {p.name: [] for p in ir.populations}
    for q in ir.projections:
        incoming[q.target].append(q)
    ops: list[int] = []
    weights: list[np.ndarray] = []
    taps = 0

    inp = buffers[INPUT]
    ops.extend([OP_PLACE, inp.channels, inp.height, inp.width, inp.origin(), inp.cstride,
                inp.pitch])
    if inp.stride > 1:  # the image itself is read with a stride: split it once per image
        ops.extend([OP_PHASE, inp.channels, inp.rows, inp.pitch, inp.stride, inp.offset,
                    inp.cstride, inp.pitch, inp.phase_offset, inp.phase_cstride,
                    inp.phase_pitch, inp.phase_size])
    feature_offsets, cursor = {}, 0
    pool = ir.readout.pool_size
    copy_offsets: dict[str, int] = {}
    computed = None
    if copies is None:
        for name in ir.readout.populations:
            feature_offsets[name] = cursor
            cursor += ir.population(name).channels * pool * pool
    else:
        copy_offsets, cursor = _copy_offsets(ir, copies)
        computed = {step.population for step in build_plan(ir, list(copy_offsets))}
        if INPUT in copy_offsets:
            ops.extend(_copy_op(inp, copy_offsets[INPUT]))
    for population in ir.populations:
        name = population.name
        if name == INPUT or (computed is not None and name not in computed):
            continue
        bias = np.zeros(population.channels)
        parts = []
        for index, q in enumerate(incoming[name]):
            weight = folded[q.name].weight
            bias += folded[q.name].bias
            # only the taps that count: nonzero, or not finite (NaN in weight * mask, as in
            # the plain path, is not a dropped tap)
            co, ci, dy, dx = np.nonzero(weight != 0)
            values = weight[co, ci, dy, dx]
            offsets, pitch = _tap_offsets(buffers[q.source], q.padding_lrtb, q.stride,
                                          ci, dy, dx)
            parts.append((co, np.full(len(co), index), offsets, values,
                          np.full(len(co), pitch)))
        co, projection, offsets, values, pitches = (np.concatenate(column)
                                                    for column in zip(*parts, strict=True))
        taps += len(co)
        out = buffers[name]
        # The kernel writes the phase images as it stores each block (no OP_PHASE).
        ops.extend([OP_CONV, population.channels, population.height, population.width,
                    out.origin(), out.cstride, out.pitch, out.stride, out.phase_offset,
                    out.phase_cstride, out.phase_pitch, out.phase_size, out.top, out.left])
        stream, channel_weights = _channel_streams(
            population.channels, co, projection, offsets, values, pitches, bias)
        ops.extend(stream.tolist())
        weights.append(channel_weights)
        if name in feature_offsets:
            ops.extend([OP_POOL, out.channels, out.height, out.width, pool, out.origin(),
                        out.cstride, out.pitch, feature_offsets[name]])
        if name in copy_offsets:
            ops.extend(_copy_op(out, copy_offsets[name]))
    ops.append(OP_END)
    program = Program(int32_stream(ops),
                      np.concatenate(weights or [np.zeros(0)]).astype(np.float32), arena_size,
                      cursor, taps)
    check_program(program.ops, len(program.weights), program.arena_size, program.features,
                  ir.input.channels * ir.input.height * ir.input.width)
    return program


def _copy_op(buffer: Buffer, offset: int) -> list[int]:
    """Copy a population's valid area out to ``offset`` of an image's output."""
    return [OP_COPY, buffer.channels, buffer.height, buffer.width, buffer.origin(),
            buffer.cstride, buffer.pitch, offset]


def _channel_streams(channels: int, co: np.ndarray, projection: np.ndarray,
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


_EXECUTORS: weakref.WeakSet[SparseExecutor] = weakref.WeakSet()
"""Every live executor, reset in a forked child (see ``_reset_after_fork``)."""


def _reset_executors_after_fork() -> None:
    for executor in list(_EXECUTORS):
        executor._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_executors_after_fork)


class SparseExecutor:
    """Runs a MouseNet's inference with the native kernel, batch split across threads."""

    def __init__(self, model: MouseNet, threads: int | None = None,
                 cache: PreparedCache | None = None) -> None:
        """``threads``: at most this many threads per call (default: torch's intra-op thread
        count, ``torch.get_num_threads()``, read at each call). A batch with at least that many
        images is split between the threads, one image at a time each; a smaller batch is
        shared, each thread computing part of every population's rows. ``cache``: where the
        programs are held (the model's own, from its dispatcher; default: one of its own)."""
        self.model = model
        self.threads = threads
        self._library = native.library()
        self.cache = PreparedCache(model) if cache is None else cache
        self._arenas: list[np.ndarray] = []
        # One call at a time: calls share the arenas (and each already uses every thread).
        self._lock = threading.Lock()
        _EXECUTORS.add(self)

    def _reset_after_fork(self) -> None:
        """In a forked child: the threads that held the lock or were writing the arenas
        exist only in the parent, so start with a free lock and fresh arenas."""
        self._lock = threading.Lock()
        self._arenas = []

    def program(self, copies: tuple[str, ...] | None = None) -> Program:
        """The program of the pooled readout (or of ``copies``: ``compile_program``), from
        the present weights."""
        def build() -> Program:
            folded = self.cache.get("folded", lambda: folded_projections(self.model))
            return compile_program(self.model, copies, folded)

        return self.cache.get(("sparse", copies), build)

    def _arena_pointers(self, count: int, size: int) -> np.ndarray:
        """Addresses of ``count`` per-thread activation arenas, each starting on a cache line
        (the layout aligns buffers relative to it); zeroed once, since the padding borders are
        never written."""
        if any(len(arena) < size for arena in self._arenas):
            self._arenas = []  # (every program of one IR has one layout: never in practice)
        while len(self._arenas) < count:
            raw = np.zeros(size + ALIGN, dtype=np.float32)
            skip = (-raw.ctypes.data % (4 * ALIGN)) // 4
            self._arenas.append(raw[skip:skip + size])
        return np.array([arena.ctypes.data for arena in self._arenas[:count]], dtype=np.uint64)

    def pooled_features(self, images: Tensor) -> Tensor:
        """(N, features) readout features: pooled layer-5 activity, concatenated. Safe to call
        from several Python threads (the calls run one after another)."""
        with self._lock:
            return self._pooled_features(images)

    def _pooled_features(self, images: Tensor) -> Tensor:
        return self._execute(self.program(), images)

    def populations(self, images: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
        """Activity (after ReLU) of the named populations, ``(N, C, H, W)`` each, computing
        only their ancestors. Safe to call from several Python threads."""
        names = tuple(dict.fromkeys(names))
        if not all_finite(images):
            return self.model.plain_features(images, names)
        with self._lock:
            output = self._execute(self.program(names), images)
        activity, start = {}, 0
        for name in names:
            population = self.model.ir.population(name)
            shape = (population.channels, population.height, population.width)
            size = shape[0] * shape[1] * shape[2]
            # a copy per population: a view would keep the whole batch's output alive
            activity[name] = output[:, start:start + size].reshape(-1, *shape).clone(
                memory_format=torch.contiguous_format)
            start += size
        return activity

    def _execute(self, program: Program, images: Tensor) -> Tensor:
        """Run ``program`` on a batch: ``(N, program.features)`` outputs."""
        inp = self.model.ir.input
        if (images.dim() != 4 or tuple(images.shape[1:]) != (inp.channels, inp.height, inp.width)
                or images.dtype != torch.float32 or images.device.type != "cpu"):
            raise BackendError(f"sparse strategy: input {tuple(images.shape)} {images.dtype} "
                               f"on {images.device} is not (N, {inp.channels}, {inp.height}, "
                               f"{inp.width}) float32 on cpu")  # the kernel reads that many
        images = images.detach().contiguous()
        count = images.shape[0]
        features = torch.empty((count, program.features), dtype=torch.float32)
        threads = max(1, self.threads or torch.get_num_threads())
        arenas = self._arena_pointers(max(1, min(threads, count)), program.arena_size)
        status = self._library.mnc_sparse_run(
            program.ops.ctypes.data, program.weights.ctypes.data, arenas.ctypes.data,
            images.data_ptr(), count, images[0].numel() if count else 0, features.data_ptr(),
            program.features, native.isa(), threads)  # isa read per call: env may cap it
        if status:
            raise BackendError("sparse kernel rejected its program (an internal error); "
                               "use strategy 'merged'")
        return features

    def forward(self, images: Tensor) -> Tensor:
        if not all_finite(images):
            return self.model.plain_forward(images)
        classifier = self.model.classifier
        return torch.nn.functional.linear(self.pooled_features(images), classifier.weight,
                                          classifier.bias)

