"""A model file with broken mnc metadata, or one that fails while running, is one message
naming the file (exit 2), never a traceback."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnc.cli.main import main
from tests.backends.onnx.helpers import write_small_spec

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.onnx


@pytest.fixture(scope="module")
def model_path(small_onnx):
    return small_onnx


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(path)
    return path


def _with_metadata(model_path, tmp_path, key, value):
    model = onnx.load(str(model_path))
    kept = [prop for prop in model.metadata_props if prop.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = key, value
    path = tmp_path / "edited.onnx"
    onnx.save(model, str(path))
    return path


BROKEN_METADATA = [
    ("mnc.preprocessing", "[1, 2, 3]"),
    ("mnc.preprocessing", '{"crop_fraction": "most"}'),
    ("mnc.preprocessing", '{"crop_fraction": 7}'),
    ("mnc.preprocessing", '{"mean": [0.5]}'),
    ("mnc.preprocessing", '{"std": [0, 0, 0]}'),
    ("mnc.preprocessing", '{"mean": "abc"}'),
    ("mnc.preprocessing", "{" * 100_000),
    ("mnc.preprocessing", "[" * 100_000 + "]" * 100_000),
    ("mnc.class_names", '{"a": 1}'),
    ("mnc.class_names", '["cat", 3]'),
    ("mnc.class_names", '["cat\\u001b[31m"]'),
    ("mnc.class_names", '["\\u202edog"]'),
]


@pytest.mark.parametrize(("key", "value"), BROKEN_METADATA,
                         ids=[f"{key}-{index}" for index, (key, _) in enumerate(BROKEN_METADATA)])
def test_broken_metadata_is_one_message(model_path, photo, tmp_path, capsys, key, value):
    edited = _with_metadata(model_path, tmp_path, key, value)
    assert main(["predict", str(edited), str(photo), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(edited) in err and key in err and "Traceback" not in err


def test_a_failure_while_running_is_one_message(model_path, photo, capsys, monkeypatch):
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    def fail(*args, **kwargs):
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running "
                   "Conv node.")

    monkeypatch.setattr(ort.InferenceSession, "run", fail)
    assert main(["predict", str(model_path), str(photo), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(model_path) in err and "Conv node" in err and "Traceback" not in err


def test_predict_output_onto_the_model_is_refused(model_path, photo, tmp_path, capsys):
    copy = tmp_path / "model.onnx"
    copy.write_bytes(model_path.read_bytes())
    assert main(["predict", str(copy), str(photo), "--device", "cpu", "-o", str(copy)]) == 2
    assert "input" in capsys.readouterr().err
    assert copy.read_bytes() == model_path.read_bytes()
    assert main(["predict", str(copy), str(photo), "--device", "cpu", "-o", str(photo)]) == 2


def test_opset_newer_than_onnx_knows_is_one_message(tmp_path, capsys):
    newest = onnx.defs.onnx_opset_version()
    assert main(["compile", str(write_small_spec(tmp_path)), "--backend", "onnx", "--opset",
                 str(newest + 50)]) == 2
    err = capsys.readouterr().err
    assert "opset" in err and str(newest) in err


def test_opset_newer_than_the_installed_onnxruntime_runs_is_refused(tmp_path, capsys):
    from mnc_backends.onnx.graph import MIN_OPSET
    from mnc_backends.onnx.opsets import newest_runtime_opset

    runtime, version = newest_runtime_opset(MIN_OPSET)
    assert runtime >= MIN_OPSET and version == ort.__version__
    spec = str(write_small_spec(tmp_path))
    if runtime < onnx.defs.onnx_opset_version():  # onnx knows opsets this runtime refuses
        output = tmp_path / "new.onnx"
        assert main(["compile", spec, "--backend", "onnx", "--opset", str(runtime + 1),
                     "-o", str(output)]) == 2
        err = capsys.readouterr().err
        assert f"onnxruntime {version} runs (newest: {runtime})" in err
        assert not output.exists()
    output = tmp_path / "newest.onnx"
    assert main(["compile", spec, "--backend", "onnx", "--opset", str(runtime),
                 "-o", str(output)]) == 0
    ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
