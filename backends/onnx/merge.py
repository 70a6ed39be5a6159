"""Optional rewrite of an exported ONNX graph: one Conv per (source, stride), as in ``merged``.

The ONNX backend emits one Conv per projection (``conv:A->B``, BatchNorm folded, padding in
the Conv's ``pads``). Many of them are thin (3 to 42 channels) and share their input. This
rewrite replaces the Convs that read the same value with the same stride by one Conv whose
kernel box holds every member (zeros elsewhere; geometry from ``grouping``), followed by one
Slice per member that yields the original value ``conv:A->B`` (channels, and the output grid
where the box's trailing padding made it larger), so the rest of the graph is untouched.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mnc.analysis.grouping import group_projections
from mnc.errors import BackendError
from mnc.ir.model import IR


def merge_convolutions(model: onnx.ModelProto, ir: IR) -> onnx.ModelProto:
    """A copy of ``model`` (the ONNX backend's float32 graph of ``ir``) with merged Convs."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    convs = {node.output[0]: node for node in graph.node if node.op_type == "Conv"}
    replaced: dict[int, list[onnx.NodeProto]] = {}
    removed: set[int] = set()
    used: set[str] = set()
    position = {id(node): index for index, node in enumerate(graph.node)}
    new_initializers = []
    for group in group_projections(ir):
        nodes = []
        for member in group.members:
            node = convs.get(f"conv:{member.name}")
            if node is None:
                raise BackendError(f"onnx merge: the graph has no Conv conv:{member.name}; "
                                   f"was it exported by mnc's ONNX backend from this IR?")
            nodes.append(node)
        if len(nodes) == 1:
            continue
        weights, biases = [], []
        for member, node in zip(group.members, nodes, strict=True):
            weight = numpy_helper.to_array(initializers[node.input[1]])
            if weight.dtype != np.float32:
                raise BackendError("onnx merge: only float32 graphs are supported")
            k = member.kernel_size
            box = np.zeros((weight.shape[0], weight.shape[1], group.kernel_height,
                            group.kernel_width), dtype=np.float32)
            box[:, :, member.offset_y:member.offset_y + k,
                member.offset_x:member.offset_x + k] = weight
            weights.append(box)
            biases.append(numpy_helper.to_array(initializers[node.input[2]]))
            used.update(node.input[1:])
        key = f"merged:{group.source}:s{group.stride}"
        new_initializers += [numpy_helper.from_array(np.concatenate(weights), f"{key}.weight"),
                             numpy_helper.from_array(np.concatenate(biases), f"{key}.bias")]
        left, right, top, bottom = group.padding_lrtb
        out = helper.make_node("Conv", [nodes[0].input[0], f"{key}.weight", f"{key}.bias"],
                               [key], name=f"Conv:{key}",
                               kernel_shape=[group.kernel_height, group.kernel_width],
                               strides=[group.stride] * 2, pads=[top, left, bottom, right])
        emitted = [out]
        for member, node in zip(group.members, nodes, strict=True):
            start = member.channel_start
            starts = f"{node.output[0]}:starts"
            ends = f"{node.output[0]}:ends"
            new_initializers += [
                numpy_helper.from_array(np.array([start, 0, 0], dtype=np.int64), starts),
                numpy_helper.from_array(np.array([start + member.out_channels, member.height,
                                                  member.width], dtype=np.int64), ends)]
            axes = f"{node.output[0]}:axes"
            new_initializers.append(numpy_helper.from_array(np.array([1, 2, 3], np.int64), axes))
            emitted.append(helper.make_node("Slice", [key, starts, ends, axes], [node.output[0]],
                                            name=f"Slice:{node.output[0]}"))
        first = min(position[id(node)] for node in nodes)
        replaced[first] = emitted
        removed.update(position[id(node)] for node in nodes)
    new_nodes = []
    for index, node in enumerate(graph.node):
        if index in replaced:
            new_nodes.extend(replaced[index])
        if index not in removed:
            new_nodes.append(node)
    merged = onnx.ModelProto()
    merged.CopyFrom(model)
    del merged.graph.node[:]
    merged.graph.node.extend(new_nodes)
    kept = [tensor for tensor in graph.initializer if tensor.name not in used]
    del merged.graph.initializer[:]
    merged.graph.initializer.extend(kept + new_initializers)
    onnx.checker.check_model(merged)
    return merged
