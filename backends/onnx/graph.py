"""IR + parameters -> ONNX model, built node by node with onnx.helper (no tracing).

Graph layout, kept simple for later graph optimisers:
  image (batch, C, H, W) float32, or (batch, steps, C, H, W) for a network shown a clip;
  per population, in topological order: one Conv per merged group of its incoming projections
  (``mnc.lowering.merged``: masks and inference BatchNorm folded into the box kernel, the
  group's stride, its asymmetric padding in Conv's own ``pads``) shared by the group's
  targets, a Slice per member where the group has several (channels, and the grid where the
  box made it larger), a Sum when there are several inputs, a Relu whose output is named
  after the population; readout: AveragePool (or two MatMuls when the grid does not divide
  evenly, as adaptive pooling does), Flatten, Concat, Gemm -> ``logits``.
A recurrent IR (``IR.is_recurrent``) is unrolled: every population has a value per step
(``VISp4@2``); a delay-d input reads its source's value at step t - d and is left out before
step d; an upsampled stride-1 input is a Conv over the source itself with one set of output
channels per phase, then DepthToSpace (``mnc.lowering.merged.SubpixelSplit``: the same sums,
about upsample^2 times fewer products), other upsampled inputs a nearest Resize first; a
clip's frame t is a Gather; the readout averages each readout population over the readout
steps before pooling (pooling is linear); population outputs are (batch, steps, C, H, W).
Values are named after what they are (``VISp2/3``, ``conv:VISp4->VISl4``), initialisers after
the shared tensor names, so a node can be traced back to the spec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mnc
from mnc.errors import BackendError
from mnc.imaging import Preprocessing
from mnc.ir.model import IR
from mnc.lowering.batchnorm import fold_projections, population_batchnorm
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

from .parameters import Parameters, conv_name, normalised_populations

INPUT_NAME = "image"
LOGITS_NAME = "logits"
BATCH_DIM = "batch"
MIN_OPSET = 17
DEFAULT_OPSET = 17


@dataclass
class _Builder:
    """Collects nodes and initialisers; in float16 mode stores tensors and computes in half."""

    float16: bool
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    @property
    def dtype(self) -> type:
        return np.float16 if self.float16 else np.float32

    def constant(self, name: str, array: np.ndarray) -> str:
        """An initialiser in the graph's precision."""
        return self.exact(name, np.asarray(array).astype(self.dtype))

    def exact(self, name: str, array: np.ndarray) -> str:
        """An initialiser kept in its own dtype (indices, shapes, scales)."""
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{op}:{output}",
                                           **attributes))
        return output


def internal_name(name: str, float16: bool) -> str:
    """Name of a value inside the graph (float16 graphs cast to float32 at the edges)."""
    return f"{name}:fp16" if float16 else name


def build_model(ir: IR, parameters: Parameters, outputs: tuple[str, ...] = (), *,
                opset: int = DEFAULT_OPSET, float16: bool = False, merge: bool = True,
                metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """The checked, shape-inferred ONNX model of ``ir`` with ``parameters``; ``merge``: one
    Conv per merged group, else one per projection."""
    if opset < MIN_OPSET:
        raise BackendError(f"ONNX opset {opset} is too old; the ONNX backend emits opset "
                           f"{MIN_OPSET} or newer")
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise BackendError(f"ONNX opset {opset} is newer than this onnx package knows "
                           f"(newest: {newest}); choose an opset from {MIN_OPSET} to {newest}")
    exported = check_outputs(ir, outputs)
    builder = _Builder(float16)
    network = _Network(ir, parameters, builder, merge)
    steps = ir.dynamics.steps
    for step in range(steps):
        for population in normalised_populations(ir):
            network.population(population.name, step)
    features = [_pool(builder, ir, name, network.readout_value(name))
                for name in ir.readout.populations]
    joined = features[0] if len(features) == 1 else builder.node(
        "Concat", features, "readout:features", axis=1)
    logits = builder.node(
        "Gemm",
        [joined, builder.constant("classifier.weight", parameters["classifier.weight"]),
         builder.constant("classifier.bias", parameters["classifier.bias"])],
        internal_name(LOGITS_NAME, float16), transB=1)
    output_infos = [helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT,
                                                  [BATCH_DIM, ir.readout.classes])]
    results = [(LOGITS_NAME, logits)]
    time = [steps] if ir.is_recurrent else []
    for name in exported:
        population = ir.population(name)
        output_infos.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT,
            [BATCH_DIM, *time, population.channels, population.height, population.width]))
        results.append((name, network.output_value(name)))
    if float16:
        for name, value in results:
            builder.node("Cast", [value], name, to=TensorProto.FLOAT)
    clip = [steps] if ir.dynamics.input == "clip" else []
    graph = helper.make_graph(
        builder.nodes, _graph_name(ir),
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                       [BATCH_DIM, *clip, ir.input.channels, ir.input.height,
                                        ir.input.width])],
        output_infos, builder.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="mnc",
                              producer_version=mnc.__version__,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string=f"{ir.name} compiled by mnc {mnc.__version__} "
                                         f"(content hash {ir.short_hash})")
    helper.set_model_props(model, {**model_metadata(ir, exported, float16), **(metadata or {})})
    return finish(model)


class _Network:
    """Emits the values of (population, step) on demand, each node once."""

    def __init__(self, ir: IR, parameters: Parameters, builder: _Builder, merge: bool) -> None:
        self.ir, self.parameters, self.builder = ir, parameters, builder
        self.groups = merged_groups(ir) if merge else single_groups(ir)
        self.incoming = groups_by_target(self.groups)
        self.folded = fold_projections(ir, parameters)
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

    def population(self, name: str, step: int) -> str:
        builder = self.builder
        terms = [self._member(index, member, step) for index, member in self.incoming[name]
                 if step >= self.groups[index].delay]
        if not terms:
            value = self._resting(name)
        else:
            total = terms[0] if len(terms) == 1 else builder.node(
                "Sum", terms, self.name(f"sum:{name}", step))
            value = builder.node("Relu", [total],
                                 internal_name(self.name(name, step), builder.float16))
        self.values[(name, step)] = value
        return value

    def _resting(self, name: str) -> str:
        """ReLU(BN(0)) broadcast over the batch: a population none of whose inputs has
        started yet (all of them delayed past this step)."""
        def make() -> str:
            builder, population = self.builder, self.ir.population(name)
            shift = population_batchnorm(self.parameters, name)[1]
            rest = builder.constant(f"rest:{name}", np.maximum(shift, 0).reshape(1, -1, 1, 1))
            batch = builder.node("Shape", [INPUT_NAME], f"rest:{name}:batch", start=0, end=1)
            grid = builder.exact(f"rest:{name}:grid", np.array(
                [population.channels, population.height, population.width], dtype=np.int64))
            shape = builder.node("Concat", [batch, grid], f"rest:{name}:shape", axis=0)
            return builder.node("Expand", [rest, shape],
                                internal_name(f"rest:{name}:value", builder.float16))
        return str(self._once(("rest", name), make))

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


def finish(model: onnx.ModelProto) -> onnx.ModelProto:
    """Full checker pass, then shape inference (strict), kept in the saved model."""
    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                 data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise RuntimeError(f"mnc built an invalid ONNX graph (a bug): {error}") from error


def check_outputs(ir: IR, outputs: tuple[str, ...]) -> list[str]:
    """Requested population outputs, deduplicated; ``logits`` is always there."""
    names = ir.population_names()
    exported: list[str] = []
    for name in outputs:
        if name == LOGITS_NAME or name in exported:
            continue
        if name not in names:
            raise BackendError(f"output {name!r} is not a population of {ir.name}; choose from "
                               f"{LOGITS_NAME}, {', '.join(names[1:])}")
        if name == names[0] or name == INPUT_NAME:
            raise BackendError(f"output {name!r} is the input image itself; export a population "
                               f"that computes something (e.g. {names[1]})")
        exported.append(name)
    return exported


def _pool(builder: _Builder, ir: IR, name: str, value: str) -> str:
    """Adaptive average pooling to pool_size x pool_size, flattened in (C, H, W) order."""
    population = ir.population(name)
    size = ir.readout.pool_size
    height, width = population.height, population.width
    pooled = value
    if (height, width) != (size, size):
        if height % size == 0 and width % size == 0:
            window = [height // size, width // size]
            pooled = builder.node("AveragePool", [value], f"pool:{name}", kernel_shape=window,
                                  strides=window)
        else:
            across = builder.constant(f"readout.{name}.pool_width",
                                      adaptive_pool_matrix(width, size).T)
            down = builder.constant(f"readout.{name}.pool_height",
                                    adaptive_pool_matrix(height, size))
            rows = builder.node("MatMul", [value, across], f"pool_width:{name}")
            pooled = builder.node("MatMul", [down, rows], f"pool:{name}")
    return builder.node("Flatten", [pooled], f"flatten:{name}", axis=1)


def adaptive_pool_matrix(length: int, size: int) -> np.ndarray:
    """(size, length) averaging matrix of adaptive pooling: window i covers
    [floor(i * length / size), ceil((i + 1) * length / size))."""
    matrix = np.zeros((size, length), dtype=np.float64)
    for index in range(size):
        start = (index * length) // size
        stop = -((-(index + 1) * length) // size)
        matrix[index, start:stop] = 1.0 / (stop - start)
    return matrix


def model_metadata(ir: IR, exported: list[str], float16: bool) -> dict[str, str]:
    preprocessing = Preprocessing(height=ir.input.height, width=ir.input.width,
                                  channels=ir.input.channels)
    return {
        "mnc.content_hash": ir.content_hash,
        "mnc.version": mnc.__version__,
        "mnc.spec_name": ir.name,
        "mnc.provenance": json.dumps(ir.provenance.model_dump(mode="json"), sort_keys=True),
        "mnc.outputs": json.dumps([LOGITS_NAME, *exported]),
        "mnc.precision": "float16" if float16 else "float32",
        **({"mnc.dynamics": json.dumps({
            "steps": ir.dynamics.steps, "input": ir.dynamics.input,
            "readout_steps": list(ir.dynamics.readout_range)})} if ir.is_recurrent else {}),
        "mnc.preprocessing": json.dumps({
            "crop_fraction": preprocessing.crop_fraction, "mean": list(preprocessing.mean),
            "std": list(preprocessing.std)}),
    }


def _graph_name(ir: IR) -> str:
    return f"{ir.name}-{ir.short_hash}"
