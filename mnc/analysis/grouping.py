"""Merge the projections that leave one source with one stride into a single wider convolution.

A projection with kernel ``k``, stride ``s`` and padding ``(left, right, top, bottom)`` reads,
for output column ``x``, the source columns ``x*s - left .. x*s - left + k - 1``. Projections
that share a source and a stride read windows anchored at the same ``x*s``; the union of their
windows is a kernel of ``before + after + 1`` taps, where ``before = max(left)`` and
``after = max(k - 1 - left)``. Each projection's kernel sits in that box at offset
``before - left`` (zeros elsewhere), so one convolution with the box kernel and padding
``before`` computes every member exactly; its output channels are the members' channels,
concatenated in IR order. Rows work the same way with top/bottom. Only geometry is decided here
(pure Python over the IR); the torch code that fills the merged weight lives in ``merged``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnc.ir.model import IR, Projection


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
        """The member's own output grid for a source of ``height x width`` (inputs of other
        sizes than the IR's included); the merged output is at least as large."""
        left, right, top, bottom = self.padding_lrtb
        return ((height + top + bottom - self.kernel_size) // stride + 1,
                (width + left + right - self.kernel_size) // stride + 1)


@dataclass(frozen=True)
class SourceGroup:
    """Every projection leaving ``source`` with ``stride``: one convolution."""

    source: str
    stride: int
    in_channels: int
    kernel_height: int
    kernel_width: int
    padding_lrtb: tuple[int, int, int, int]
    """Padding of the merged convolution: left, right, top, bottom."""
    members: tuple[Member, ...]

    @property
    def out_channels(self) -> int:
        return sum(member.out_channels for member in self.members)

    def phase_split(self, height: int, width: int) -> PhaseSplit | None:
        """The stride-1 form of this stride-2 convolution over the four phase images of a
        ``height x width`` source, or None (another stride, or an odd grid)."""
        if self.stride != 2 or height % 2 or width % 2:
            return None
        left, right, top, bottom = self.padding_lrtb
        front_y, size_y, top2, bottom2 = _phase_axis(self.kernel_height, top, bottom, height)
        front_x, size_x, left2, right2 = _phase_axis(self.kernel_width, left, right, width)
        return PhaseSplit(front_y, front_x, size_y, size_x, (left2, right2, top2, bottom2))


@dataclass(frozen=True)
class PhaseSplit:
    """A stride-2 convolution as a stride-1 one over ``pixel_unshuffle(x, 2)``.

    Tap ``dy`` of the box reads source row ``2*o + dy - top``, which is row ``o + q`` of phase
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


def _extent(projections: list[Projection], before_index: int, after_index: int
            ) -> tuple[int, int, int]:
    """(box size, padding before, padding after) along one axis for the projections."""
    before = max(q.padding_lrtb[before_index] for q in projections)
    after = max(q.kernel_size - 1 - q.padding_lrtb[before_index] for q in projections)
    # Each member's own trailing padding, moved into the box frame; the largest one keeps
    # every member's output size (extra outputs are sliced off by the executor).
    trailing = max(q.padding_lrtb[after_index] + after - (q.kernel_size - 1
                                                            - q.padding_lrtb[before_index])
                   for q in projections)
    return before + after + 1, before, trailing


def group_projections(ir: IR) -> tuple[SourceGroup, ...]:
    """Merged convolutions, in the order of their sources in the IR (then stride)."""
    by_key: dict[tuple[str, int], list[Projection]] = {}
    for projection in ir.projections:
        by_key.setdefault((projection.source, projection.stride), []).append(projection)
    order = {name: index for index, name in enumerate(ir.population_names())}
    groups = []
    for (source, stride), projections in sorted(by_key.items(),
                                                key=lambda item: (order[item[0][0]], item[0][1])):
        kernel_width, left, right = _extent(projections, 0, 1)
        kernel_height, top, bottom = _extent(projections, 2, 3)
        members = []
        start = 0
        for q in projections:
            target = ir.population(q.target)
            members.append(Member(q.name, q.target, start, q.out_channels, q.kernel_size,
                                  target.height, target.width,
                                  top - q.padding_lrtb[2], left - q.padding_lrtb[0],
                                  q.padding_lrtb))
            start += q.out_channels
        groups.append(SourceGroup(source, stride, projections[0].in_channels, kernel_height,
                                  kernel_width, (left, right, top, bottom), tuple(members)))
    return tuple(groups)
