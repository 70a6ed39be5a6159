"""`--merge-convs` (the default) and `--no-merge-convs` compute what the torch backend does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mnc
from tests.backends.onnx.helpers import run_onnx
from tests.conftest import TINY_SPEC, run_mnc

pytestmark = [pytest.mark.onnx, pytest.mark.torch]


@pytest.mark.parametrize("flag", [[], ["--merge-convs"], ["--no-merge-convs"]],
                         ids=["default", "merge", "no-merge"])
def test_exported_graph_matches_torch(tmp_path, flag):
    model = mnc.compile(TINY_SPEC, backend="torch").eval()
    weights = tmp_path / "tiny.pt"
    from mnc.backend import BackendOptions, get_backend

    get_backend("torch").save(model, weights, BackendOptions())
    output = tmp_path / "model.onnx"
    result = run_mnc("compile", str(TINY_SPEC), "--backend", "onnx", "--weights", str(weights),
                     *flag, "-o", str(output))
    assert result.returncode == 0, result.stderr
    import onnx

    graph = onnx.load(str(output)).graph
    convs = sum(node.op_type == "Conv" for node in graph.node)
    projections = len(model.ir.projections)
    assert (convs == projections) if flag == ["--no-merge-convs"] else (convs < projections)
    assert not any(node.op_type == "Pad" for node in graph.node)
    images = np.random.default_rng(0).random((7, 3, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(images)).numpy()
    actual = run_onnx(output, images)["logits"]
    assert np.abs(actual - expected).max() <= 1e-4


def test_fp16_graph_merges_as_the_float32_graph(tmp_path):
    import onnx

    ops = {}
    for name, flags in [("full", []), ("half", ["--fp16"])]:
        output = tmp_path / f"{name}.onnx"
        result = run_mnc("compile", str(TINY_SPEC), "--backend", "onnx", *flags, "-o",
                         str(output))
        assert result.returncode == 0, result.stderr
        ops[name] = [node.op_type for node in onnx.load(str(output)).graph.node]
    ir = mnc.compile_ir(TINY_SPEC)
    assert ops["half"].count("Conv") == ops["full"].count("Conv") < len(ir.projections)
    assert ops["half"].count("Slice") == ops["full"].count("Slice") > 0
