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
    probabilities = [float(item.rsplit(" ", 1)[1])
                     for item in lines[0].split(": ", 1)[1].split(", ")]
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


def test_a_1000_class_model_names_imagenet_classes_and_digits_runs_name_their_own(
        tmp_path, photos, capsys):
    """ImageNet's names ship with mnc; a network trained on digits records "0".."9" in its
    checkpoints and the ONNX export carries them."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from mnc.class_names import imagenet_class_names
    from mnc_backends.torch.training import train
    from tests.conftest import TINY_SPEC

    names = imagenet_class_names()
    assert len(set(names)) == 1000 and names[0] == "tench" and names[999] == "toilet tissue"
    assert main(["compile", "mouse", "--backend", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.onnx"), str(photos), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["predictions"][0]["top"]
    assert all(entry["name"] == names[entry["class"]] for entry in top)

    train(TINY_SPEC, tmp_path / "run", overrides={
        "data": "digits", "epochs": 1, "batch_size": 8, "max_steps_per_epoch": 1,
        "device": "cpu", "workers": 0, "progress": False})
    assert main(["compile", str(TINY_SPEC), "--backend", "onnx", "--weights",
                 str(tmp_path / "run" / "best.pt"), "-o", str(tmp_path / "d.onnx")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "d.onnx"), str(photos), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["predictions"][0]["top"]
    assert all(entry["name"] == str(entry["class"]) for entry in top)
