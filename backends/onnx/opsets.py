"""The newest ONNX opset the installed onnxruntime runs, found by asking it.

onnxruntime publishes no such number in its API, and an onnx package newer than it defines
opsets it refuses at load time. So a one-node model is loaded at each opset, newest first,
once per process (a few milliseconds); without onnxruntime nothing is capped beyond onnx's
own newest opset.
"""

from __future__ import annotations

import functools

import onnx
from onnx import TensorProto, helper


def _loads(opset: int) -> bool:
    import onnxruntime as ort

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    result = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [value],
                              [result])
    imports = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=imports,
                              ir_version=helper.find_min_ir_version_for(imports))
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - any refusal means this opset does not run
        return False
    return True


@functools.cache
def newest_runtime_opset(oldest: int) -> tuple[int, str] | None:
    """(newest opset from ``oldest`` up that onnxruntime loads, its version), or None when
    onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    for opset in range(onnx.defs.onnx_opset_version(), oldest - 1, -1):
        if _loads(opset):
            return opset, ort.__version__
    return oldest - 1, ort.__version__
