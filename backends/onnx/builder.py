"""Collects the nodes and initialisers of an ONNX graph, in float32 or float16."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

INPUT_NAME = "image"


@dataclass
class Builder:
    """Nodes and initialisers; in float16 mode stores tensors and computes in half."""

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
