"""Collects the nodes and initialisers of an ONNX graph, in float32 or float16."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mnc.errors import UserFileError
from mnc.text import shown

INPUT_NAME = "image"
FLOAT16_MAX = float(np.finfo(np.float16).max)


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
        """An initialiser in the graph's precision; in float16, a finite value beyond its
        range (65504) is refused, naming the tensor: it would become an infinity and every
        prediction NaN."""
        array = np.asarray(array)
        if self.float16:
            finite = np.abs(array[np.isfinite(array)]) if array.size else array
            if finite.size and float(finite.max()) > FLOAT16_MAX:
                count = int(np.count_nonzero(finite > FLOAT16_MAX))
                raise UserFileError(
                    f"--fp16: tensor {shown(name)} holds {count} value(s) beyond float16's "
                    f"range (largest magnitude {float(finite.max()):.4g}, float16 holds at "
                    f"most {FLOAT16_MAX:g}); export in float32 (without --fp16)")
            with np.errstate(over="ignore"):
                return self.exact(name, array.astype(self.dtype))
        return self.exact(name, array.astype(self.dtype))

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
