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
The populations computed, and at which steps, are the IR's time schedule
(``mnc.lowering.schedule``) for the readout and the exported populations; a recurrent IR
(``IR.is_recurrent``) is unrolled in time (``network``); the readout averages
each readout population over the readout steps before pooling (pooling is linear);
population outputs are (batch, steps, C, H, W).
Values are named after what they are (``VISp2/3``, ``conv:VISp4->VISl4``), initialisers after
the shared tensor names, so a node can be traced back to the spec.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper

from mnc.errors import BackendError
from mnc.imaging import Preprocessing
from mnc.ir.model import IR
from mnc.lowering.schedule import time_schedule
from mnc.version import __version__

from .builder import INPUT_NAME, Builder, internal_name
from .network import NetworkValues
from .opsets import newest_runtime_opset
from .parameters import Parameters

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "LOGITS_NAME", "build_model"]

LOGITS_NAME = "logits"
BATCH_DIM = "batch"
MIN_OPSET = 17
DEFAULT_OPSET = 17


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
    runtime = newest_runtime_opset(MIN_OPSET)
    if runtime is not None and opset > runtime[0]:
        raise BackendError(f"ONNX opset {opset} is newer than the installed onnxruntime "
                           f"{runtime[1]} runs (newest: {runtime[0]}), so the model could not be "
                           f"run or checked; choose an opset from {MIN_OPSET} to {runtime[0]}")
    exported = check_outputs(ir, outputs)
    builder = Builder(float16)
    network = NetworkValues(ir, parameters, builder, merge)
    steps = ir.dynamics.steps
    # exported populations are output at every step; the readout reads its own steps
    schedule = time_schedule(ir, [*ir.readout.populations, *exported],
                             range(steps) if exported else None)
    for item in schedule.computations:
        network.population(item)
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
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string=f"{ir.name} compiled by mnc {__version__} "
                                         f"(content hash {ir.short_hash})")
    helper.set_model_props(model, {**model_metadata(ir, exported, float16), **(metadata or {})})
    return finish(model)


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


def _pool(builder: Builder, ir: IR, name: str, value: str) -> str:
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
        "mnc.version": __version__,
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
