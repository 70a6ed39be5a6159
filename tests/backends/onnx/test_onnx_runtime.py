"""Opening exported models with onnxruntime and running them over image files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnc.backend import BackendOptions
from mnc.errors import UserFileError
from mnc_backends.onnx import OnnxBackend
from mnc_backends.onnx.runtime import open_model, predict, providers_for, read_model, top_k

pytestmark = pytest.mark.onnx


@pytest.fixture(scope="module")
def model_path(small_ir, tmp_path_factory):
    backend = OnnxBackend()
    path = tmp_path_factory.mktemp("model") / "small.onnx"
    options = BackendOptions(outputs=("VISp5",))
    backend.save(backend.compile(small_ir, options), path, options)
    return path


def write_images(folder, count, size=(40, 30)):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"img{index}.{'png' if index % 2 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def test_session_uses_cpu_or_cuda_and_reads_metadata(model_path, small_ir):
    model = open_model(model_path)
    assert model.provider in ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert model.outputs == ["logits", "VISp5"]
    assert (model.preprocessing.height, model.preprocessing.width) == (32, 32)
    assert model.metadata["mnc.content_hash"] == small_ir.content_hash
    assert open_model(model_path, "cpu").provider == "CPUExecutionProvider"


def test_providers_prefer_cuda_then_cpu():
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    assert providers_for("auto")[-1] == "CPUExecutionProvider"


@pytest.mark.parametrize("content", [b"", b"\x08\x01garbage" * 10, None])
def test_unreadable_model_names_the_file(tmp_path, content):
    path = tmp_path / "broken.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserFileError, match="broken.onnx"):
        read_model(path)


def test_truncated_model_is_refused(model_path, tmp_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes(model_path.read_bytes()[:5000])
    with pytest.raises(UserFileError, match="cut.onnx: not a readable ONNX model"):
        open_model(path)


def test_batches_skip_unreadable_images_and_keep_order(model_path, tmp_path):
    paths = write_images(tmp_path / "photos", 5)
    broken = tmp_path / "photos" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    files = [paths[0], broken, *paths[1:]]
    skipped = []
    model = open_model(model_path, "cpu")
    result = predict(model, files, ["VISp5"], batch_size=2, progress=False,
                     on_skip=lambda path, reason: skipped.append(path))
    assert result.files == paths and skipped == [broken]
    assert result.logits.shape == (5, 10) and result.features["VISp5"].shape == (5, 16, 32, 32)
    assert "broken.png" in result.skipped[0][1]
    alone = predict(model, [paths[3]], progress=False)
    np.testing.assert_allclose(alone.logits[0], result.logits[3], atol=1e-5)


def test_missing_feature_output_is_a_clear_error(model_path, tmp_path):
    paths = write_images(tmp_path / "photos", 1)
    with pytest.raises(UserFileError, match=r"no output 'VISl5' .*outputs: VISp5"):
        predict(open_model(model_path, "cpu"), paths, ["VISl5"], progress=False)


def test_no_readable_image_is_an_error(model_path, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("text")
    with pytest.raises(UserFileError, match="none of the 1 image"):
        predict(open_model(model_path, "cpu"), [bad], progress=False)


def test_top_k_orders_classes_by_probability():
    logits = np.array([[0.0, 3.0, 1.0, 2.0]])
    indices, probabilities = top_k(logits, 3)
    assert indices.tolist() == [[1, 3, 2]]
    expected = np.exp([3.0, 2.0, 1.0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(probabilities[0], expected)
    assert top_k(logits, 10)[0].shape == (1, 4)
