"""Merged convolutions: the projections that read one source the same way, as one convolution.

Projections are mergeable when they read the same source map in the same way: same
``(source, stride, upsample, delay)`` (a delayed projection reads the source at another step,
an upsampled one a repeated map). A projection with kernel ``k`` and padding
``(left, right, top, bottom)`` reads, for output column ``x``, the input columns
``x*s - left .. x*s - left + k - 1``, where the input is the source after upsampling. Members
of one group read windows anchored at the same ``x*s``; the union of their windows is a box of
``before + after + 1`` taps, ``before = max(left)`` and ``after = max(k - 1 - left)``. Each
member's kernel sits in the box at offset ``before - left`` (zeros elsewhere), so one
convolution with the box kernel and padding ``before`` computes every member exactly; its
output channels are the members' channels, concatenated in IR order, and its output grid is
at least each member's (slice each member's channels and grid). Rows work the same way.

Geometry (pure Python over the IR) and the numpy filling of the box weights and biases from
per-projection weights (``box_weight``, ``box_bias``; BatchNorm folded beforehand by
``mnc.lowering.batchnorm.fold_projections`` when a backend folds) live here, for every backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from mnc.ir.model import IR, Projection

GroupKey = tuple[str, int, int, int]
"""(source, stride, upsample, delay): what projections must share to merge."""


@dataclass(frozen=True)
class Member:
    """One projection inside a merged convolution."""

    name: str
    """IR name, ``source->target``."""
    target: str
    channel_start: int
    """First output channel of this member in the merged convolution."""
    out_channels: int
    kernel_size: int
    height: int
    """Output grid of the target (the merged output may be one row or column larger)."""
    width: int
    offset_y: int
    """Row of the member's kernel inside the merged kernel box."""
    offset_x: int
    padding_lrtb: tuple[int, int, int, int]
    """The projection's own padding: left, right, top, bottom."""

    def output_size(self, height: int, width: int, stride: int) -> tuple[int, int]:
        """The member's own output grid for a convolution input (the source after
        upsampling) of ``height x width``, inputs of other sizes than the IR's included; the
        merged output is at least as large."""
        left, right, top, bottom = self.padding_lrtb
        return ((height + top + bottom - self.kernel_size) // stride + 1,
                (width + left + right - self.kernel_size) // stride + 1)


@dataclass(frozen=True)
class MergedGroup:
    """The projections leaving ``source`` with one (stride, upsample, delay): one convolution
    over the source (at step ``t - delay``) repeated ``upsample`` times along each axis."""

    source: str
    stride: int
    in_channels: int
    kernel_height: int
    kernel_width: int
    padding_lrtb: tuple[int, int, int, int]
    """Padding of the merged convolution: left, right, top, bottom."""
    members: tuple[Member, ...]
    upsample: int = 1
    delay: int = 0

    @property
    def key(self) -> GroupKey:
        return (self.source, self.stride, self.upsample, self.delay)

    @property
    def out_channels(self) -> int:
        return sum(member.out_channels for member in self.members)

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The convolution's input grid for a source of ``height x width``."""
        return height * self.upsample, width * self.upsample

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The merged convolution's output grid for a convolution input of ``height x width``."""
        left, right, top, bottom = self.padding_lrtb
        return ((height + top + bottom - self.kernel_height) // self.stride + 1,
                (width + left + right - self.kernel_width) // self.stride + 1)

    def subpixel(self, height: int, width: int) -> SubpixelSplit | None:
        """This upsampled stride-1 convolution over a ``height x width`` source as a
        convolution over the source itself, or None (no upsampling, or another stride)."""
        if self.upsample == 1 or self.stride != 1:
            return None
        left, right, top, bottom = self.padding_lrtb
        rows = _subpixel_axis(self.kernel_height, top, bottom, height, self.upsample)
        columns = _subpixel_axis(self.kernel_width, left, right, width, self.upsample)
        return SubpixelSplit(self.upsample, rows, columns)

    def folded_kernel_taps(self, height: int, width: int) -> int:
        """Entries of the kernel emitted for this group over a ``height x width`` source once
        BatchNorm is folded (ONNX export, merged inference): the ``subpixel`` split's when
        there is one (``u*u`` times the channels, each with fewer taps), else the box's."""
        split = self.subpixel(height, width)
        if split is None:
            return self.out_channels * self.in_channels * self.kernel_height * self.kernel_width
        return (self.out_channels * split.factor**2 * self.in_channels
                * split.rows.kernel * split.columns.kernel)

    def phase_split(self, height: int, width: int) -> PhaseSplit | None:
        """The stride-1 form of this stride-2 convolution over the four phase images of a
        ``height x width`` convolution input, or None (another stride, or an odd grid)."""
        if self.stride != 2 or height % 2 or width % 2:
            return None
        left, right, top, bottom = self.padding_lrtb
        front_y, size_y, top2, bottom2 = _phase_axis(self.kernel_height, top, bottom, height)
        front_x, size_x, left2, right2 = _phase_axis(self.kernel_width, left, right, width)
        return PhaseSplit(front_y, front_x, size_y, size_x, (left2, right2, top2, bottom2))


@dataclass(frozen=True)
class PhaseSplit:
    """A stride-2 convolution as a stride-1 one over ``pixel_unshuffle(x, 2)``.

    Tap ``dy`` of the box reads input row ``2*o + dy - top``, which is row ``o + q`` of phase
    ``p``, where ``dy - top = 2*q + p``. Padding the box with ``front_y`` zero rows in front
    (and zeros behind, to ``2 * kernel_height``) makes that index ``2*(q - q_min) + p``, so
    the split kernel is the padded box reshaped to ``(kernel_height, 2)`` per axis. Columns
    work the same way. The output grid is at least the strided one (sliced by the caller).
    """

    front_y: int
    front_x: int
    kernel_height: int
    kernel_width: int
    padding_lrtb: tuple[int, int, int, int]


def _phase_axis(kernel: int, before: int, after: int, length: int) -> tuple[int, int, int, int]:
    """(front zeros, split kernel size, pad before, pad after) along one axis."""
    first = -((before + 1) // 2)  # q_min = floor(-before / 2)
    last = (kernel - 1 - before) // 2
    outputs = (length + before + after - kernel) // 2 + 1
    pad_after = max(0, outputs - 1 + last - (length // 2 - 1))
    return -2 * first - before, last - first + 1, -first, pad_after


@dataclass(frozen=True)
class SubpixelAxis:
    """One axis of a ``SubpixelSplit``. Upsampled position ``u*i + p`` (phase ``p``) read
    through box tap ``d`` is source position ``floor((u*i + p + d - before) / u)``, that is
    ``i + floor((p + d - before) / u)``: the box taps of one phase that read one source
    offset add into one tap of the split kernel."""

    kernel: int
    padding_before: int
    padding_after: int
    taps: tuple[tuple[int, ...], ...]
    """``taps[p][d]``: the split kernel's tap into which box tap ``d`` adds for phase ``p``."""
    outputs: int
    """Output positions of the split convolution (times ``u``: at least the upsampled ones)."""


@dataclass(frozen=True)
class SubpixelSplit:
    """An upsampled (factor ``u``) stride-1 convolution as a stride-1 convolution over the
    source itself with ``u*u`` times the output channels (channel ``o*u*u + py*u + px`` is
    phase ``(py, px)`` of channel ``o``), then depth-to-space (``pixel_shuffle``): each output
    sums the box taps that read one source pixel, so about ``u*u`` times fewer products."""

    factor: int
    rows: SubpixelAxis
    columns: SubpixelAxis

    @property
    def padding_lrtb(self) -> tuple[int, int, int, int]:
        return (self.columns.padding_before, self.columns.padding_after,
                self.rows.padding_before, self.rows.padding_after)


def _subpixel_axis(kernel: int, before: int, after: int, length: int, factor: int
                   ) -> SubpixelAxis:
    first = -before // factor  # the source offset box tap 0 of phase 0 reads
    last = (factor - 1 + kernel - 1 - before) // factor
    split = last - first + 1
    needed = -(-(length * factor + before + after - kernel + 1) // factor)
    pad_after = max(0, needed + split - 1 - length + first)
    taps = tuple(tuple((phase + tap - before) // factor - first for tap in range(kernel))
                 for phase in range(factor))
    return SubpixelAxis(split, -first, pad_after, taps,
                        length - first + pad_after - split + 1)


def subpixel_weight(weight: np.ndarray, split: SubpixelSplit) -> np.ndarray:
    """The split kernel ``(out * u * u, in, rows.kernel, columns.kernel)`` of a box kernel
    ``(out, in, kernel_height, kernel_width)``, in the box's dtype."""
    def placement(axis: SubpixelAxis) -> np.ndarray:
        matrix = np.zeros((len(axis.taps), axis.kernel, len(axis.taps[0])))
        for phase, taps in enumerate(axis.taps):
            matrix[phase, list(taps), range(len(taps))] = 1.0
        return matrix

    out_channels, in_channels = weight.shape[:2]
    split_kernel = np.einsum("pjy,qkx,ocyx->opqcjk", placement(split.rows),
                             placement(split.columns), weight, optimize=True)
    return split_kernel.reshape(out_channels * split.factor ** 2, in_channels,
                                split.rows.kernel, split.columns.kernel).astype(weight.dtype)


def subpixel_bias(bias: np.ndarray, split: SubpixelSplit) -> np.ndarray:
    """Each channel's bias repeated for its ``u*u`` phases."""
    return np.repeat(bias, split.factor ** 2)


def group_key(projection: Projection) -> GroupKey:
    return (projection.source, projection.stride, projection.upsample, projection.delay)


def _extent(projections: list[Projection], before_index: int, after_index: int
            ) -> tuple[int, int, int]:
    """(box size, padding before, padding after) along one axis for the projections."""
    before = max(q.padding_lrtb[before_index] for q in projections)
    after = max(q.kernel_size - 1 - q.padding_lrtb[before_index] for q in projections)
    # Each member's own trailing padding, moved into the box frame; the largest one keeps
    # every member's output size (extra outputs are sliced off by the caller).
    trailing = max(q.padding_lrtb[after_index] + after - (q.kernel_size - 1
                                                            - q.padding_lrtb[before_index])
                   for q in projections)
    return before + after + 1, before, trailing


def _group(ir: IR, projections: list[Projection]) -> MergedGroup:
    kernel_width, left, right = _extent(projections, 0, 1)
    kernel_height, top, bottom = _extent(projections, 2, 3)
    members = []
    start = 0
    for q in projections:
        target = ir.population(q.target)
        members.append(Member(q.name, q.target, start, q.out_channels, q.kernel_size,
                              target.height, target.width, top - q.padding_lrtb[2],
                              left - q.padding_lrtb[0], q.padding_lrtb))
        start += q.out_channels
    first = projections[0]
    return MergedGroup(first.source, first.stride, first.in_channels, kernel_height,
                       kernel_width, (left, right, top, bottom), tuple(members),
                       first.upsample, first.delay)


def merged_groups(ir: IR) -> tuple[MergedGroup, ...]:
    """One convolution per ``(source, stride, upsample, delay)``, ordered by the source's
    place in the IR, then stride, upsample and delay; members in IR order."""
    by_key: dict[GroupKey, list[Projection]] = {}
    for projection in ir.projections:
        by_key.setdefault(group_key(projection), []).append(projection)
    order = {name: index for index, name in enumerate(ir.population_names())}
    keys = sorted(by_key, key=lambda key: (order[key[0]], *key[1:]))
    return tuple(_group(ir, by_key[key]) for key in keys)


def single_groups(ir: IR) -> tuple[MergedGroup, ...]:
    """One group per projection, in IR order (merging turned off): the box is the
    projection's own kernel and padding, so the output needs no slicing."""
    return tuple(_group(ir, [projection]) for projection in ir.projections)


def box_weight(group: MergedGroup, weights: Mapping[str, np.ndarray]) -> np.ndarray:
    """The merged kernel ``(out_channels, in_channels, kernel_height, kernel_width)`` from the
    members' kernels (by projection name), zeros outside each member's place; the dtype is
    that of the members' kernels."""
    kernels = [np.asarray(weights[member.name]) for member in group.members]
    box = np.zeros((group.out_channels, group.in_channels, group.kernel_height,
                    group.kernel_width), dtype=np.result_type(*kernels))
    for member, kernel in zip(group.members, kernels, strict=True):
        k = member.kernel_size
        box[member.channel_start:member.channel_start + member.out_channels, :,
            member.offset_y:member.offset_y + k, member.offset_x:member.offset_x + k] = kernel
    return box


def box_bias(group: MergedGroup, biases: Mapping[str, np.ndarray]) -> np.ndarray:
    """The merged bias: the members' biases (by projection name) concatenated."""
    return np.concatenate([np.asarray(biases[member.name]) for member in group.members])


def groups_by_target(groups: Iterable[MergedGroup]) -> dict[str, list[tuple[int, Member]]]:
    """Population -> (group index, member) of every projection into it, in group order."""
    incoming: dict[str, list[tuple[int, Member]]] = {}
    for index, group in enumerate(groups):
        for member in group.members:
            incoming.setdefault(member.target, []).append((index, member))
    return incoming
