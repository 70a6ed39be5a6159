"""The ONNX rewrite to one Conv per source and stride (the default export) keeps the outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mnc
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import SPECS, TINY_SPEC

ort = pytest.importorskip("onnxruntime")
from mnc_backends.onnx import merge as onnx_merge  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.onnx]


@pytest.mark.parametrize("spec", [TINY_SPEC, SPECS / "variants" / "visp-only.yaml"],
                         ids=lambda path: path.stem)
def test_merged_graph_matches_reference_with_fewer_convs(spec):
    model, reference = model_pair(spec)
    state = {key: value.detach().numpy() for key, value in model.state_dict().items()}
    exported = mnc.compile(model.ir, backend="onnx", state_dict=state, merge_convolutions=False)
    merged = onnx_merge.merge_convolutions(exported, model.ir)
    count = sum(node.op_type == "Conv" for node in merged.graph.node)
    sources = {(q.source, q.stride) for q in model.ir.projections}
    assert count == len(sources) <= len(model.ir.projections)
    assert not any(node.op_type == "Pad" for node in merged.graph.node)
    session = ort.InferenceSession(merged.SerializeToString(), providers=["CPUExecutionProvider"])
    images = images_for(model, 3)
    with torch.inference_mode():
        expected = reference(images).numpy()
    got = session.run(None, {"image": images.numpy()})[0]
    assert float(np.abs(got - expected).max()) < 1e-4
