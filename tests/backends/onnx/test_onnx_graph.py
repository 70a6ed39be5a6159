"""The exported graph: structure, names, metadata, options and their errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import mnc
from mnc.backend import BackendOptions, get_backend
from mnc.errors import BackendError
from mnc_backends.onnx import OnnxBackend
from mnc_backends.onnx.graph import adaptive_pool_matrix
from tests.backends.onnx.helpers import run_onnx

pytestmark = pytest.mark.onnx


def compile_onnx(ir, **options):
    extra = options.pop("extra", {})
    return OnnxBackend().compile(ir, BackendOptions(extra=extra, **options))


def test_registered_under_its_name():
    backend = get_backend("onnx")
    assert isinstance(backend, OnnxBackend)
    assert (backend.name, backend.suffix) == ("onnx", ".onnx")


def test_model_passes_full_check_and_declares_interface(small_ir):
    model = compile_onnx(small_ir, outputs=("logits", "VISp5", "VISl2/3"))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].domain == "" and model.opset_import[0].version >= 17
    (image,) = model.graph.input
    dims = [dim.dim_param or dim.dim_value for dim in image.type.tensor_type.shape.dim]
    assert image.name == "image" and dims == ["batch", 3, 32, 32]
    assert [value.name for value in model.graph.output] == ["logits", "VISp5", "VISl2/3"]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {value.name: [dim.dim_param or dim.dim_value
                           for dim in value.type.tensor_type.shape.dim]
              for value in inferred.graph.output}
    visl = small_ir.population("VISl2/3")
    assert shapes["logits"] == ["batch", small_ir.readout.classes]
    assert shapes["VISl2/3"] == ["batch", visl.channels, visl.height, visl.width]


def test_metadata_records_hash_version_and_provenance(small_ir):
    model = compile_onnx(small_ir)
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata["mnc.content_hash"] == small_ir.content_hash
    assert metadata["mnc.version"] == mnc.__version__
    provenance = json.loads(metadata["mnc.provenance"])
    assert provenance["spec_name"] == small_ir.provenance.spec_name
    assert provenance["sources"]["readout"] == small_ir.provenance.sources["readout"]
    assert "seed 0" in metadata["mnc.weights"]


def test_default_graph_has_one_conv_per_source_and_stride_and_no_pad_ops(small_ir):
    ops = [node.op_type for node in compile_onnx(small_ir).graph.node]
    assert ops.count("Conv") == len({(p.source, p.stride) for p in small_ir.projections})
    assert "Pad" not in ops and "BatchNormalization" not in ops


def test_one_conv_per_projection_with_pads_attribute_and_no_pad_ops(small_ir):
    model = compile_onnx(small_ir, extra={"merge_convolutions": False})
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Conv") == len(small_ir.projections)
    assert "Pad" not in ops and "BatchNormalization" not in ops
    asymmetric = next(p for p in small_ir.projections if len(set(p.padding_lrtb)) > 1)
    node = next(node for node in model.graph.node if node.output[0] == f"conv:{asymmetric.name}")
    attributes = {attribute.name: onnx.helper.get_attribute_value(attribute)
                  for attribute in node.attribute}
    left, right, top, bottom = asymmetric.padding_lrtb
    assert attributes["pads"] == [top, left, bottom, right]
    assert attributes["strides"] == [asymmetric.stride] * 2


def test_dynamic_batch_runs(small_ir):
    model = compile_onnx(small_ir, outputs=("VISpor5",))
    for batch in (1, 3):
        images = np.random.default_rng(batch).normal(size=(batch, 3, 32, 32)).astype(np.float32)
        outputs = run_onnx(model, images)
        assert outputs["logits"].shape == (batch, small_ir.readout.classes)
        assert outputs["VISpor5"].shape[0] == batch and np.isfinite(outputs["logits"]).all()
        assert (outputs["VISpor5"] >= 0).all()


def test_fresh_weights_are_deterministic_per_seed(small_ir):
    first = compile_onnx(small_ir).SerializeToString()
    assert compile_onnx(small_ir).SerializeToString() == first
    reseeded = small_ir.model_copy(update={"mask": small_ir.mask.model_copy(update={"seed": 5})})
    assert compile_onnx(reseeded).SerializeToString() != first


def test_fresh_weights_are_the_lowered_ones(small_ir):
    from mnc.lowering.fresh_weights import fresh_weights
    from mnc_backends.onnx.parameters import fresh_parameters

    parameters = fresh_parameters(small_ir)
    lowered = fresh_weights(small_ir)
    for name, array in parameters.items():
        assert np.array_equal(array, lowered[name]), name
    weight = parameters["convs.VISp4__VISl4.weight"]
    assert np.all(weight[parameters["convs.VISp4__VISl4.mask"] == 0] == 0)  # masked taps


@pytest.mark.parametrize(("outputs", "message"), [
    (("VISp9",), "'VISp9' is not a population"),
    (("input",), "is the input image itself"),
])
def test_bad_output_names(small_ir, outputs, message):
    with pytest.raises(BackendError, match=message):
        compile_onnx(small_ir, outputs=outputs)


@pytest.mark.parametrize(("extra", "message"), [
    ({"opset": 13}, "opset 13 is too old"),
    ({"opst": 18}, "no option 'opst'"),
    ({"class_names": ["cat", "dog"]}, "class_names has 2 entries"),
])
def test_bad_options(small_ir, extra, message):
    with pytest.raises(BackendError, match=message):
        compile_onnx(small_ir, extra=extra)


def test_newer_opset_and_class_names(small_ir):
    names = [f"class{index}" for index in range(small_ir.readout.classes)]
    model = compile_onnx(small_ir, extra={"opset": 18, "class_names": names})
    assert model.opset_import[0].version == 18
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(metadata["mnc.class_names"]) == names


def test_save_is_atomic_and_readable(small_ir, tmp_path):
    backend = OnnxBackend()
    model = backend.compile(small_ir, BackendOptions())
    path = tmp_path / "m.onnx"
    backend.save(model, path, BackendOptions())
    assert onnx.load(str(path)) == model
    assert [item.name for item in tmp_path.iterdir()] == ["m.onnx"]
    assert "input image (batch, 3, 32, 32)" in backend.describe(model)


@pytest.mark.parametrize(("length", "size"), [(16, 4), (16, 3), (7, 3), (5, 5)])
def test_adaptive_pool_matrix_matches_torch(length, size):
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).normal(size=(2, 3, length, length))
    expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(values), size).numpy()
    matrix = adaptive_pool_matrix(length, size)
    np.testing.assert_allclose(matrix @ values @ matrix.T, expected, atol=1e-12)
