"""`mnc predict` reads an ONNX model's external data only inside its folder and within the
memory limit, with one message naming the model and the location."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from mnc.cli.main import main

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.onnx


@pytest.fixture(scope="module")
def compiled(small_onnx):
    return onnx.load(str(small_onnx))


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(path)
    return path


def _external(compiled, folder, location="weights.bin"):
    """The model saved in ``folder`` with every initializer in ``weights.bin``, then each
    tensor's location rewritten to ``location``."""
    folder.mkdir(exist_ok=True)
    model = onnx.ModelProto()
    model.CopyFrom(compiled)
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="weights.bin",
                    size_threshold=0)
    if location != "weights.bin":
        model = onnx.load(str(path), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        path.write_bytes(model.SerializeToString())
    return path


def _predict(path, photo, capsys, env=None, monkeypatch=None):
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    status = main(["predict", str(path), str(photo)])
    captured = capsys.readouterr()
    return status, captured.err


def test_external_data_inside_the_folder_is_read(compiled, tmp_path, photo, capsys):
    path = _external(compiled, tmp_path / "model")
    status, err = _predict(path, photo, capsys)
    assert status == 0, err


@pytest.mark.parametrize("location", ["../weights.bin", "sub/../../weights.bin"])
def test_location_outside_the_folder_is_refused(compiled, tmp_path, photo, capsys, location):
    path = _external(compiled, tmp_path / "model", location)
    (tmp_path / "weights.bin").write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    status, err = _predict(path, photo, capsys)
    assert status == 2
    assert str(path) in err and repr(location) in err
    assert "outside the model's folder" in err or "inside the model's folder" in err
    assert "Traceback" not in err


def test_absolute_location_is_refused(compiled, tmp_path, photo, capsys):
    outside = tmp_path / "elsewhere.bin"
    path = _external(compiled, tmp_path / "model", str(outside))
    outside.write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    status, err = _predict(path, photo, capsys)
    assert status == 2
    assert str(path) in err and repr(str(outside)) in err and "absolute" in err


def test_symbolic_link_out_of_the_folder_is_refused(compiled, tmp_path, photo, capsys):
    path = _external(compiled, tmp_path / "model", "linked.bin")
    os.replace(tmp_path / "model" / "weights.bin", tmp_path / "weights.bin")
    os.symlink(tmp_path / "weights.bin", tmp_path / "model" / "linked.bin")
    status, err = _predict(path, photo, capsys)
    assert status == 2
    assert str(path) in err and "'linked.bin'" in err and "outside the model's folder" in err


def test_missing_external_file_is_one_message(compiled, tmp_path, photo, capsys):
    path = _external(compiled, tmp_path / "model", "gone.bin")
    status, err = _predict(path, photo, capsys)
    assert status == 2
    assert str(path) in err and "'gone.bin'" in err and "no such file" in err
    assert "Traceback" not in err


def test_external_data_over_the_memory_limit_is_refused(compiled, tmp_path, photo, capsys,
                                                        monkeypatch):
    """The .onnx file itself is small; the bytes its tensors point at are not."""
    path = _external(compiled, tmp_path / "model")
    weights = (tmp_path / "model" / "weights.bin").stat().st_size
    assert path.stat().st_size < weights
    limit_mb = (path.stat().st_size + weights // 2) / 2**20
    status, err = _predict(path, photo, capsys, {"MNC_MAX_MEMORY_MB": str(limit_mb)},
                           monkeypatch)
    assert status == 2
    assert str(path) in err and "'weights.bin'" in err and "MNC_MAX_MEMORY_MB" in err


def test_external_data_past_the_end_of_its_file_is_one_message(compiled, tmp_path, photo,
                                                               capsys):
    path = _external(compiled, tmp_path / "model")
    data = tmp_path / "model" / "weights.bin"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    status, err = _predict(path, photo, capsys)
    assert status == 2
    assert str(path) in err and "'weights.bin'" in err and "Traceback" not in err
