"""The work an ONNX model asks of one image, counted from its graph before anything runs.

A recurrent network is exported unrolled: every step is a copy of the network's nodes, so a
model of 1000 steps asks 1000 times the work of one (minutes per image on a CPU) while its
file stays small. Multiply-accumulates are counted for every ``Conv``, ``ConvTranspose``,
``MatMul`` and ``Gemm`` from the shapes ONNX's shape inference gives (batch 1); other nodes
do far less work per value and are left out.
"""

from __future__ import annotations

import math

import onnx
from onnx import shape_inference

BIG_PER_OPERATION = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def graph_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of one image (batch dimension counted as 1)."""
    inferred = shape_inference.infer_shapes(model, strict_mode=False)
    shapes = {
        value.name: _dims(value.type)
        for value in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)
    }
    shapes.update({tensor.name: list(tensor.dims) for tensor in model.graph.initializer})
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in BIG_PER_OPERATION or len(node.input) < 2:
            continue
        weight = shapes.get(node.input[1])
        output = shapes.get(node.output[0])
        if not weight or not output:
            continue
        if node.op_type in ("Conv", "ConvTranspose"):
            # output (N, C_out, ...) x weight (C_out, C_in / groups, k...) taps per value
            total += math.prod(output[1:]) * math.prod(weight[1:])
        else:  # (..., K) x (K, M): K per output value
            total += math.prod(output[1:] if len(output) > 1 else output) * weight[0]
    return total


def _dims(kind: onnx.TypeProto) -> list[int] | None:
    if not kind.HasField("tensor_type") or not kind.tensor_type.HasField("shape"):
        return None
    dims = []
    for index, dim in enumerate(kind.tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif index == 0:
            dims.append(1)  # the batch
        else:
            return None
    return dims
