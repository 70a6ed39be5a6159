"""safetensors files and save_pretrained folders: the IR and its hash travel in the header,
reading never unpickles, and a file or folder that is wrong gets one message naming it."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import mnc  # noqa: E402
from mnc.errors import UserFileError  # noqa: E402
from mnc_backends.torch import MouseNet  # noqa: E402
from mnc_backends.torch.weights_io import load_model, save_model  # noqa: E402
from tests.conftest import ROOT, TINY_SPEC, run_mnc  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[MouseNet, Path]:
    model = mnc.compile(TINY_SPEC, backend="torch")
    with torch.no_grad():
        model.conv("VISp4->VISl4").weight.mul_(3)  # not the fresh weights
    path = tmp_path_factory.mktemp("st") / "tiny.safetensors"
    save_model(model, path)
    return model, path


def _metadata_and_tensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as opened:
        return opened.metadata(), {name: opened.get_tensor(name) for name in opened.keys()}  # noqa: SIM118


def test_a_safetensors_file_carries_the_ir_and_its_hash(saved):
    model, path = saved
    metadata, tensors = _metadata_and_tensors(path)
    assert metadata["format"] == "mnc.torch-model"
    assert metadata["content_hash"] == model.ir.content_hash
    assert json.loads(metadata["ir_json"])["content_hash"] == model.ir.content_hash
    assert set(tensors) == set(model.state_dict())


def test_loading_rebuilds_the_network_without_unpickling(saved, monkeypatch):
    model, path = saved

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = mnc.load(path)
    assert loaded.ir.content_hash == model.ir.content_hash
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def _rewrite(path: Path, target: Path, **changes: str) -> Path:
    metadata, tensors = _metadata_and_tensors(path)
    save_file(tensors, str(target), metadata={**metadata, **changes})
    return target


def test_a_wrong_ir_hash_is_refused_with_one_message(saved, tmp_path):
    _, path = saved
    wrong = _rewrite(path, tmp_path / "wrong.safetensors", content_hash="0" * 64)
    with pytest.raises(
        UserFileError,
        match=r"wrong.safetensors: content_hash 000000000000 "
        r"does not match the IR the file holds",
    ):
        load_model(wrong, MouseNet)
    result = run_mnc("compile", str(TINY_SPEC), "--weights", str(wrong))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "wrong.safetensors" in result.stderr and result.stderr.count("\n") == 1


def test_an_edited_ir_is_refused(saved, tmp_path):
    _, path = saved
    metadata, _ = _metadata_and_tensors(path)
    data = json.loads(metadata["ir_json"])
    data["readout"]["classes"] = 11
    edited = _rewrite(path, tmp_path / "edited.safetensors", ir_json=json.dumps(data))
    with pytest.raises(UserFileError, match="edited.safetensors"):
        load_model(edited, MouseNet)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff" * 8 + b"{}",  # header length past the end
        struct.pack("<Q", 5) + b"{oops",  # header that is not JSON
        struct.pack("<Q", 64) + b'{"w": {"dtype": "F32", "shape": [1000000], '
        b'"data_offsets": [0, 4000000]}}    ',  # tensor past the end
        b"",  # empty
    ],
    ids=["length", "json", "offsets", "empty"],
)
def test_a_malformed_header_gets_one_clear_message(tmp_path, content):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(content)
    with pytest.raises(UserFileError, match="hostile.safetensors: not a readable"):
        load_model(path, MouseNet)


def test_a_bare_state_dict_is_told_what_mnc_reads(tmp_path):
    path = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(UserFileError, match="without mnc's metadata"):
        load_model(path, MouseNet)


def test_compile_to_safetensors_then_load_in_a_fresh_interpreter(tmp_path):
    path = tmp_path / "m.safetensors"
    result = run_mnc("compile", str(TINY_SPEC), "-o", str(path))
    assert result.returncode == 0, result.stderr
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mnc; print(mnc.load(sys.argv[1]).ir.short_hash)",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == mnc.compile_ir(TINY_SPEC).short_hash


def test_save_pretrained_round_trip_and_model_card(saved, tmp_path):
    model, _ = saved
    folder = model.save_pretrained(tmp_path / "hub", metrics={"val_top1": 0.25})
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    assert json.loads((folder / "config.json").read_text())["content_hash"] == model.ir.content_hash
    card = (folder / "README.md").read_text()
    assert "library_name: mnc" in card and "val_top1: 0.25" in card
    for citation in model.ir.provenance.sources.values():
        assert citation in card
    preprocessing = json.loads((folder / "preprocessor_config.json").read_text())
    assert preprocessing["mean"] == [0.485, 0.456, 0.406]
    loaded = MouseNet.from_pretrained(folder)
    images = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.eval()(images), model.eval()(images))


def test_from_pretrained_refuses_a_mixed_or_missing_folder(saved, tmp_path):
    model, _ = saved
    folder = model.save_pretrained(tmp_path / "hub")
    other = mnc.compile_ir("tiny-feedback")
    (folder / "config.json").write_text(json.dumps({"content_hash": other.content_hash}))
    with pytest.raises(UserFileError, match="mixes two networks"):
        MouseNet.from_pretrained(folder)
    with pytest.raises(UserFileError, match="never downloads"):
        MouseNet.from_pretrained("someone/mousenet")
    (folder / "model.safetensors").unlink()
    with pytest.raises(UserFileError, match="holds no model.safetensors"):
        MouseNet.from_pretrained(folder)


def test_the_module_exposes_its_preprocessing_as_timm_models_do(saved):
    model, _ = saved
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (3, 32, 32) and cfg["num_classes"] == 10
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    assert model.default_cfg == cfg
    assert model.get_submodule(cfg["classifier"]) is model.classifier
