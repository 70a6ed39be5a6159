"""Saved model files: self-describing, code-free, atomic, refused by a network of another IR."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mnc
from mnc.backend import BackendOptions, get_backend
from mnc.errors import BackendError, UserFileError
from mnc.ir.serialize import ir_from_json
from mnc_backends.torch import MouseNet, weights_io
from mnc_backends.torch.weights_io import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    load_model,
    load_weights,
    model_payload,
    save_model,
)

pytestmark = pytest.mark.torch


def _trained(ir: mnc.ir.IR) -> MouseNet:
    """A model one SGD step away from its initialisation (BN statistics moved too)."""
    model = MouseNet(ir).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    images = torch.randn(8, ir.input.channels, ir.input.height, ir.input.width)
    labels = torch.arange(8) % ir.readout.classes
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
    return model


def _images(ir: mnc.ir.IR) -> torch.Tensor:
    return torch.randn(4, ir.input.channels, ir.input.height, ir.input.width,
                       generator=torch.Generator().manual_seed(7))


def test_round_trip_gives_identical_outputs(tiny_ir, tmp_path: Path) -> None:
    model = _trained(tiny_ir).eval()
    path = tmp_path / "model.pt"
    save_model(model, path)
    loaded = mnc.load(path).eval()
    assert isinstance(loaded, MouseNet)
    assert loaded.ir.content_hash == tiny_ir.content_hash
    with torch.no_grad():
        assert torch.equal(loaded(_images(tiny_ir)), model(_images(tiny_ir)))
        assert torch.equal(loaded.features(_images(tiny_ir), ["VISl5"])["VISl5"],
                           model.features(_images(tiny_ir), ["VISl5"])["VISl5"])


def test_file_holds_ir_hash_masks_and_weights_without_code(tiny_ir, tmp_path: Path) -> None:
    model = MouseNet(tiny_ir)
    path = tmp_path / "model.pt"
    get_backend("torch").save(model, path, BackendOptions())
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == MODEL_FORMAT and payload["format_version"] == 1
    assert payload["mnc_version"] == mnc.__version__
    assert payload["content_hash"] == tiny_ir.content_hash
    assert ir_from_json(payload["ir_json"]) == tiny_ir
    assert set(payload["state_dict"]) == set(model.state_dict())
    assert torch.equal(payload["state_dict"]["convs.VISp4__VISl4.mask"],
                       model.convs["VISp4__VISl4"].mask)
    with zipfile.ZipFile(path) as archive:  # only tensors and plain containers are pickled
        pickled = next(name for name in archive.namelist() if name.endswith("data.pkl"))
        assert b"mnc_backends" not in archive.read(pickled)


def test_weights_of_another_ir_are_refused_with_both_hashes(tiny_ir, ir_editor,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_model(MouseNet(tiny_ir), path)
    other = MouseNet(ir_editor(tiny_ir, seed=5))
    with pytest.raises(BackendError) as caught:
        load_weights(other, path)
    message = str(caught.value)
    assert tiny_ir.short_hash in message and other.ir.short_hash in message
    assert str(path) in message


def test_shape_mismatch_names_the_tensor_and_both_shapes(tiny_ir, tmp_path: Path) -> None:
    model = MouseNet(tiny_ir)
    payload = model_payload(model)
    payload["state_dict"]["classifier.bias"] = torch.zeros(3)
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    expected = (tiny_ir.readout.classes,)
    with pytest.raises(BackendError, match=rf"'classifier.bias' has shape \(3,\) in the file, "
                                           rf"the network needs \({expected[0]},\)"):
        load_weights(model, path)


def test_checkpoints_load_including_compiled_model_names(tiny_ir, tmp_path: Path) -> None:
    model = _trained(tiny_ir).eval()
    payload = model_payload(model)
    payload["format"] = CHECKPOINT_FORMAT
    payload["state_dict"] = {f"_orig_mod.{k}": v for k, v in payload["state_dict"].items()}
    payload.update(epoch=3, step=30, optimizer={}, metrics={"loss": [1.0]})
    path = tmp_path / "last.pt"
    torch.save(payload, path)
    loaded = load_model(path, MouseNet).eval()
    compiled = get_backend("torch").compile(tiny_ir, BackendOptions(weights=path)).eval()
    with torch.no_grad():
        assert torch.equal(loaded(_images(tiny_ir)), model(_images(tiny_ir)))
        assert torch.equal(compiled(_images(tiny_ir)), model(_images(tiny_ir)))


@pytest.mark.parametrize(("content", "match"), [
    (None, "no such file"),
    (b"not a zip archive", "not a readable mnc weights file"),
    ({"format": "something-else"}, "format is 'something-else'"),
    ({"format": MODEL_FORMAT, "format_version": 9}, "format_version 9 is not supported"),
    ({"format": MODEL_FORMAT, "format_version": 1, "content_hash": "x"}, "'ir_json' is missing"),
])
def test_bad_files_raise_one_clear_user_error(tmp_path: Path, content: object,
                                              match: str) -> None:
    path = tmp_path / "weights.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(UserFileError, match=match):
        mnc.load(path)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": MODEL_FORMAT, "payload": Path("x")}, path)
    with pytest.raises(UserFileError, match="not a readable mnc weights file"):
        mnc.load(path)


def test_failed_save_leaves_the_old_file_and_no_debris(tiny_ir, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.pt"
    model = MouseNet(tiny_ir)
    save_model(model, path)
    original = path.read_bytes()

    def broken_save(payload: object, target: Path) -> None:
        Path(target).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(weights_io.save_torch_file.__globals__["torch"], "save", broken_save)
    with pytest.raises(UserFileError, match=r"model\.pt: cannot write \(disk full\)"):
        save_model(model, path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
