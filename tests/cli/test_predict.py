"""``mnc predict``: top-k classes, features to .npz, and clear errors, as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mnc.cli.main import main
from tests.backends.onnx.helpers import write_small_spec
from tests.conftest import run_mnc

pytestmark = pytest.mark.onnx
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A small network compiled by the real command line, exporting VISp5."""
    folder = tmp_path_factory.mktemp("predict")
    spec = write_small_spec(folder)
    path = folder / "small.onnx"
    result = run_mnc("compile", str(spec), "--backend", "onnx", "--outputs", "logits,VISp5",
                     "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index, suffix in enumerate(["png", "jpg", "jpeg"]):
        pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{index}.{suffix}")
    (folder / "readme.txt").write_text("not an image, not picked up")
    return folder


def test_top_k_is_printed_per_image(model_path, photos, capsys):
    assert main(["predict", str(model_path), str(photos), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"{photos / 'photo0.png'}: ")
    probabilities = [float(item.split()[1]) for item in lines[0].split(": ", 1)[1].split(", ")]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_json_report_and_unreadable_image_skipped(model_path, photos, capsys):
    (photos / "zz-broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    assert main(["predict", str(model_path), str(photos), "--json", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [row["file"] for row in report["predictions"]] == [
        str(photos / name) for name in ("photo0.png", "photo1.jpg", "photo2.jpeg")]
    assert len(report["predictions"][0]["top"]) == 5
    assert report["skipped"][0]["file"] == str(photos / "zz-broken.jpg")
    assert "zz-broken.jpg" in captured.err and report["provider"] == "CPUExecutionProvider"


def test_features_are_saved_to_npz(model_path, photos, tmp_path):
    out = tmp_path / "feats.npz"
    assert main(["predict", str(model_path), str(photos), "--features", "VISp5",
                 "-o", str(out)]) == 0
    with np.load(out) as saved:
        assert saved["VISp5"].shape == (3, 16, 32, 32) and saved["logits"].shape == (3, 10)
        assert saved["files"].tolist()[0] == str(photos / "photo0.png")
    assert sorted(item.name for item in tmp_path.iterdir()) == ["feats.npz", "photos"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--features", "VISl5", "-o", "OUT"], "no output 'VISl5'"),
    (["--features", "VISp5"], "--features needs -o"),
    (["--top", "0"], "--top must be at least 1"),
])
def test_errors_exit_2_and_write_nothing(model_path, photos, tmp_path, capsys, extra, message):
    extra = [str(tmp_path / "out.npz") if item == "OUT" else item for item in extra]
    assert main(["predict", str(model_path), str(photos), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


def test_all_images_unreadable_leaves_no_output(model_path, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    out = tmp_path / "feats.npz"
    assert main(["predict", str(model_path), str(bad), "-o", str(out)]) == 2
    assert "none of the 1 image(s) could be read" in capsys.readouterr().err
    assert sorted(item.name for item in tmp_path.iterdir()) == ["bad.png"]


def test_unreadable_model_is_named(tmp_path, photos, capsys):
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"\x00\x01\x02 not protobuf")
    assert main(["predict", str(model), str(photos)]) == 2
    assert f"{model}: not a readable ONNX model" in capsys.readouterr().err
