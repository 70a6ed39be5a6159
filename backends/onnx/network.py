"""The values of every population at every step, emitted into a graph on demand.

Each population sums one term per incoming projection: a slice of its merged group's Conv
(``mnc.lowering.merged``; masks and inference BatchNorm folded in by
``mnc.lowering.batchnorm``; with BatchNorm statistics per step, masks only, and each step's
BatchNorm a Mul and an Add on the sum), shared by the group's targets, then a Relu named
after it. The
graph holds the computations of the IR's time schedule (``mnc.lowering.schedule``), a
feed-forward network being its one step: a recurrent IR (``IR.is_recurrent``) has a value per
step (``VISp4@2``); a delay-d input reads its source's value at step t - d and is left out
before step d (a population none of whose inputs has started rests at ReLU(BN(0))); an
upsampled stride-1 input is a Conv
over the source itself with one set of output channels per phase, then DepthToSpace
(``SubpixelSplit``: the same sums, about upsample^2 times fewer products), other upsampled
inputs a nearest Resize first; a clip's frame t is a Gather.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from mnc.ir.model import IR
from mnc.lowering.batchnorm import fold_projections, masked_projections, population_batchnorm
from mnc.lowering.merged import (
    Member,
    MergedGroup,
    SubpixelSplit,
    box_bias,
    box_weight,
    groups_by_target,
    merged_groups,
    single_groups,
    subpixel_bias,
    subpixel_weight,
)
from mnc.lowering.schedule import Computation

from .builder import INPUT_NAME, Builder, internal_name
from .parameters import Parameters, conv_name, normalised_populations


class NetworkValues:
    """Emits the values of (population, step) on demand, each node once."""

    def __init__(self, ir: IR, parameters: Parameters, builder: Builder, merge: bool) -> None:
        self.ir, self.parameters, self.builder = ir, parameters, builder
        self.groups = merged_groups(ir) if merge else single_groups(ir)
        self.incoming = groups_by_target(self.groups)
        # Per-step BatchNorm statistics (several steps) cannot fold into weights shared by the
        # steps: the convolutions carry the masks only, and each population's BatchNorm of
        # step t is a Mul and an Add on its summed drive.
        self.per_step = ir.dynamics.steps > 1
        self.folded = (masked_projections(ir, parameters) if self.per_step
                       else fold_projections(ir, parameters))
        self.values: dict[tuple[str, int], str] = {}
        self.emitted: dict[tuple[Any, ...], Any] = {}
        image = INPUT_NAME
        if builder.float16:
            image = builder.node("Cast", [INPUT_NAME], internal_name(INPUT_NAME, True),
                                 to=TensorProto.FLOAT16)
        self.image = image
        computed = {population.name for population in normalised_populations(ir)}
        for population in ir.populations:
            if population.name not in computed:
                for step in range(ir.dynamics.steps):
                    self.values[(population.name, step)] = self._frame(step)

    def name(self, name: str, step: int) -> str:
        """A per-step value's name (feed-forward graphs keep the plain name)."""
        return f"{name}@{step}" if self.ir.is_recurrent else name

    def _once(self, key: tuple[Any, ...], make: Any) -> Any:
        if key not in self.emitted:
            self.emitted[key] = make()
        return self.emitted[key]

    def _frame(self, step: int) -> str:
        """The image shown at ``step``: the still image, or frame ``step`` of the clip."""
        if self.ir.dynamics.input == "still":
            return self.image

        def make() -> str:
            position = self.builder.exact(f"clip:index@{step}", np.array(step, np.int64))
            return self.builder.node("Gather", [self.image, position], internal_name(
                f"{INPUT_NAME}@{step}", self.builder.float16), axis=1)
        return str(self._once(("frame", step), make))

    def population(self, item: Computation) -> str:
        """Emit one computation of the schedule: its present inputs' terms (in the merged
        groups' order), their Sum, BatchNorm where it is per step, Relu."""
        builder, name, step = self.builder, item.population, item.step
        present = {read.projection for read in item.inputs}
        terms = [self._member(index, member, step) for index, member in self.incoming[name]
                 if member.name in present]
        if not terms:
            value = self._resting(name, step)
        else:
            total = terms[0] if len(terms) == 1 else builder.node(
                "Sum", terms, self.name(f"sum:{name}", step))
            if self.per_step:
                total = self._normalised(name, step, total)
            value = builder.node("Relu", [total],
                                 internal_name(self.name(name, step), builder.float16))
        self.values[(name, step)] = value
        return value

    def _normalised(self, name: str, step: int, total: str) -> str:
        """``total * scale + shift``: the population's BatchNorm with the statistics of
        ``step``."""
        scale, shift = population_batchnorm(self.parameters, name, step=step)
        label = self.name(f"norm:{name}", step)
        builder = self.builder
        scaled = builder.node("Mul", [total, builder.constant(
            f"{label}:scale", scale.reshape(1, -1, 1, 1))], f"{label}:scaled")
        return builder.node("Add", [scaled, builder.constant(
            f"{label}:shift", shift.reshape(1, -1, 1, 1))], label)

    def _resting(self, name: str, step: int) -> str:
        """ReLU(BN(0)) broadcast over the batch: a population none of whose inputs has
        started yet (all of them delayed past this step), with the statistics of ``step``
        when they are per step."""
        step = step if self.per_step else 0

        def make() -> str:
            builder, population = self.builder, self.ir.population(name)
            shift = population_batchnorm(self.parameters, name, step=step)[1]
            label = f"rest:{name}" + (f"@{step}" if self.per_step else "")
            rest = builder.constant(label, np.maximum(shift, 0).reshape(1, -1, 1, 1))
            batch = builder.node("Shape", [INPUT_NAME], f"{label}:batch", start=0, end=1)
            grid = builder.exact(f"{label}:grid", np.array(
                [population.channels, population.height, population.width], dtype=np.int64))
            shape = builder.node("Concat", [batch, grid], f"{label}:shape", axis=0)
            return builder.node("Expand", [rest, shape],
                                internal_name(f"{label}:value", builder.float16))
        return str(self._once(("rest", name, step), make))

    def _member(self, index: int, member: Member, step: int) -> str:
        group = self.groups[index]
        merged = self._conv(index, step)
        if not self._sliced(group):
            return merged
        starts, ends, axes = self._once(("slice", member.name), lambda: self._slice(member))
        return self.builder.node("Slice", [merged, starts, ends, axes],
                                 self.name(f"conv:{member.name}", step))

    def _slice(self, member: Member) -> tuple[str, str, str]:
        start, builder = member.channel_start, self.builder
        return (builder.exact(f"conv:{member.name}:starts", np.array([start, 0, 0], np.int64)),
                builder.exact(f"conv:{member.name}:ends", np.array(
                    [start + member.out_channels, member.height, member.width], np.int64)),
                builder.exact(f"conv:{member.name}:axes", np.array([1, 2, 3], np.int64)))

    def _split(self, group: MergedGroup) -> SubpixelSplit | None:
        source = self.ir.population(group.source)
        return group.subpixel(source.height, source.width)

    def _grid(self, group: MergedGroup) -> tuple[int, int]:
        """The output grid of the group's Conv (and DepthToSpace)."""
        split = self._split(group)
        if split is not None:
            return split.rows.outputs * split.factor, split.columns.outputs * split.factor
        source = self.ir.population(group.source)
        return group.output_size(*group.input_size(source.height, source.width))

    def _sliced(self, group: MergedGroup) -> bool:
        """Whether the members' outputs are parts of the Conv's (else it is the member's)."""
        member = group.members[0]
        return len(group.members) > 1 or self._grid(group) != (member.height, member.width)

    def _key(self, group: MergedGroup) -> str:
        if len(group.members) == 1:
            return conv_name(self.ir.projection(group.members[0].name))
        key = f"merged:{group.source}:s{group.stride}"
        if group.upsample != 1:
            key += f":u{group.upsample}"
        return key + (f":d{group.delay}" if group.delay else "")

    def _weights(self, group: MergedGroup) -> tuple[str, str]:
        key = self._key(group)
        weight = box_weight(group, {m.name: self.folded[m.name].weight for m in group.members})
        bias = box_bias(group, {m.name: self.folded[m.name].bias for m in group.members})
        split = self._split(group)
        if split is not None:
            weight, bias = subpixel_weight(weight, split), subpixel_bias(bias, split)
        return (self.builder.constant(f"{key}.weight", weight),
                self.builder.constant(f"{key}.bias", bias))

    def _conv(self, index: int, step: int) -> str:
        def make() -> str:
            group = self.groups[index]
            weight, bias = self._once(("weights", index), lambda: self._weights(group))
            output = self.name(self._key(group) if self._sliced(group)
                               else f"conv:{group.members[0].name}", step)
            split = self._split(group)
            if split is not None:  # upsampling folded into the kernel: see SubpixelSplit
                left, right, top, bottom = split.padding_lrtb
                phases = self.builder.node(
                    "Conv", [self.values[(group.source, step - group.delay)], weight, bias],
                    f"{output}:phases", kernel_shape=[split.rows.kernel, split.columns.kernel],
                    pads=[top, left, bottom, right])
                return self.builder.node("DepthToSpace", [phases], output,
                                         blocksize=split.factor, mode="CRD")
            left, right, top, bottom = group.padding_lrtb
            return self.builder.node(
                "Conv", [self._upsampled(group, step - group.delay), weight, bias], output,
                kernel_shape=[group.kernel_height, group.kernel_width],
                strides=[group.stride] * 2, pads=[top, left, bottom, right])
        return str(self._once(("conv", index, step), make))

    def _upsampled(self, group: MergedGroup, step: int) -> str:
        source = self.values[(group.source, step)]
        if group.upsample == 1:
            return source

        def make() -> str:
            scales = self._once(("scales", group.upsample), lambda: self.builder.exact(
                f"upsample:x{group.upsample}",
                np.array([1, 1, group.upsample, group.upsample], np.float32)))
            return self.builder.node(
                "Resize", [source, "", scales],
                self.name(f"upsample:{group.source}:x{group.upsample}", step),
                mode="nearest", coordinate_transformation_mode="asymmetric",
                nearest_mode="floor")
        return str(self._once(("upsample", group.source, group.upsample, step), make))

    def readout_value(self, name: str) -> str:
        """The population's value averaged over the readout steps."""
        steps = list(self.ir.dynamics.readout_range)
        values = [self.values[(name, step)] for step in steps]
        if len(values) == 1:
            return values[0]
        total = self.builder.node("Sum", values, f"readout:{name}:sum")
        scale = self.builder.constant(f"readout:{name}:mean", np.array(1 / len(values)))
        return self.builder.node("Mul", [total, scale], f"readout:{name}")

    def output_value(self, name: str) -> str:
        """An exported population: its value, or its steps stacked as (batch, steps, ...)."""
        float16 = self.builder.float16
        if not self.ir.is_recurrent:
            return self.values[(name, 0)]
        axis = self._once(("axis",), lambda: self.builder.exact("steps:axis",
                                                                np.array([1], np.int64)))
        output = internal_name(name, float16)
        steps = range(self.ir.dynamics.steps)
        if len(steps) == 1:
            return self.builder.node("Unsqueeze", [self.values[(name, 0)], axis], output)
        stacked = [self.builder.node("Unsqueeze", [self.values[(name, step)], axis],
                                     f"unsqueeze:{name}@{step}") for step in steps]
        return self.builder.node("Concat", stacked, output, axis=1)
