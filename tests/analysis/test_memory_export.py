"""The export estimate counts the kernels the ONNX backend emits, sub-pixel splits included."""

from __future__ import annotations

import pytest

import mnc
from mnc.analysis.memory import EXPORT_BYTES_PER_BOX_TAP, estimate_memory, network_sizes

onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.onnx

FLOAT32_BYTES = 4


def test_export_estimate_counts_the_emitted_convolution_weights():
    from onnx import numpy_helper

    from mnc_backends.onnx.graph import build_model
    from mnc_backends.onnx.parameters import fresh_parameters

    ir = mnc.compile_ir("tiny-feedback")
    # upsampled stride-1 feedback: emitted as sub-pixel convolutions with more taps than a box
    assert any(q.upsample > 1 and q.stride == 1 for q in ir.projections)
    model = build_model(ir, fresh_parameters(ir))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    weights = {node.input[1] for node in model.graph.node if node.op_type == "Conv"}
    emitted = sum(numpy_helper.to_array(initializers[name]).nbytes for name in weights)

    sizes = network_sizes(ir)
    assert FLOAT32_BYTES * sizes.folded_taps == emitted
    estimate = estimate_memory(ir, "export", sizes=sizes)
    assert estimate.parts["merged kernel boxes"] == (
        EXPORT_BYTES_PER_BOX_TAP // FLOAT32_BYTES * emitted)
    every_initializer = sum(numpy_helper.to_array(tensor).nbytes
                            for tensor in model.graph.initializer)
    assert estimate.total_bytes > every_initializer
