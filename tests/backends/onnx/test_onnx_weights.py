"""Weights files: the formats accepted, and clear errors for files that do not fit the spec."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.backend import BackendOptions
from mnc.errors import BackendError, UserFileError
from mnc.ir.serialize import ir_to_json
from mnc_backends.onnx import OnnxBackend
from tests.backends.onnx.helpers import random_state, reference_forward, run_onnx

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.onnx, pytest.mark.torch]


def save_weights(path, ir, state, *, format="mnc.torch-model", content_hash=None, **extra):
    tensors = {name: torch.from_numpy(np.asarray(value)) for name, value in state.items()}
    payload = {"format": format, "format_version": 1, "mnc_version": "0.1.0",
               "content_hash": content_hash or ir.content_hash, "ir_json": ir_to_json(ir),
               "state_dict": tensors, **extra}
    torch.save(payload, path)
    return path


def compile_file(ir, path):
    return OnnxBackend().compile(ir, BackendOptions(weights=path))


def images(batch=2, size=32):
    return np.random.default_rng(0).normal(size=(batch, 3, size, size)).astype(np.float32)


@pytest.mark.parametrize("kind", ["mnc.torch-model", "mnc.torch-checkpoint"])
def test_saved_model_and_checkpoint_fill_the_initialisers(small_ir, tmp_path, kind):
    state = random_state(small_ir)
    extra = {"epoch": 3, "optimizer": {}} if kind.endswith("checkpoint") else {}
    path = save_weights(tmp_path / "w.pt", small_ir, state, format=kind, **extra)
    model = compile_file(small_ir, path)
    np.testing.assert_allclose(run_onnx(model, images())["logits"],
                               reference_forward(small_ir, state, images())["logits"], atol=1e-4)
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata["mnc.weights"].startswith("file w.pt")


def test_mask_buffer_is_optional_and_wrapper_prefixes_are_stripped(small_ir, tmp_path):
    state = random_state(small_ir)
    masked = {f"_orig_mod.{name}": value for name, value in state.items()
              if not name.endswith(".mask")}
    model = compile_file(small_ir, save_weights(tmp_path / "w.pt", small_ir, masked))
    np.testing.assert_allclose(run_onnx(model, images())["logits"],
                               reference_forward(small_ir, state, images())["logits"], atol=1e-4)


def test_file_mask_other_than_the_irs_is_refused(small_ir, tmp_path):
    state = random_state(small_ir)
    state["convs.VISp4__VISp2_3.mask"] = np.ones_like(state["convs.VISp4__VISp2_3.mask"])
    with pytest.raises(UserFileError, match=r"w\.pt: 1 connection masks.*\n  VISp4->VISp2/3: "):
        compile_file(small_ir, save_weights(tmp_path / "w.pt", small_ir, state))


def test_learnable_mask_parameters_give_the_effective_mask(small_ir, tmp_path):
    from mnc.masks import learned_mask

    ir = small_ir.model_copy(update={"mask": small_ir.mask.model_copy(
        update={"mode": "learnable"})})
    state = random_state(ir)
    projection = ir.projection("VISp4->VISp2/3")
    state["convs.VISp4__VISp2_3.log_peak"] = np.array(np.log(0.5), dtype=np.float32)
    state["convs.VISp4__VISp2_3.log_sigma"] = np.array(np.log(2.0), dtype=np.float32)
    model = compile_file(ir, save_weights(tmp_path / "w.pt", ir, state))
    expected_state = dict(state)
    shape = state["convs.VISp4__VISp2_3.mask"].shape
    expected_state["convs.VISp4__VISp2_3.mask"] = np.broadcast_to(
        learned_mask(projection.kernel_size, np.log(0.5), np.log(2.0)), shape).copy()
    assert expected_state["convs.VISp4__VISp2_3.mask"].max() == pytest.approx(0.5)
    np.testing.assert_allclose(run_onnx(model, images())["logits"],
                               reference_forward(ir, expected_state, images())["logits"],
                               atol=1e-4)


def test_learnable_mask_parameters_of_a_fixed_mask_network_are_refused(small_ir, tmp_path):
    state = random_state(small_ir)
    state["convs.VISp4__VISp2_3.log_peak"] = np.array(np.log(0.5), dtype=np.float32)
    with pytest.raises(BackendError, match="'convs.VISp4__VISp2_3.log_peak' in the file has no "
                                           "place"):
        compile_file(small_ir, save_weights(tmp_path / "w.pt", small_ir, state))


def test_shape_mismatch_names_first_tensor_and_both_shapes(small_ir, tmp_path):
    state = random_state(small_ir)
    state["convs.VISp4__VISl4.weight"] = state["convs.VISp4__VISl4.weight"][:, :5]
    state["classifier.weight"] = state["classifier.weight"][:3]
    path = save_weights(tmp_path / "w.pt", small_ir, state)
    projection = small_ir.projection("VISp4->VISl4")
    k = projection.kernel_size
    with pytest.raises(BackendError) as caught:
        compile_file(small_ir, path)
    message = str(caught.value)
    assert str(path) in message and "'convs.VISp4__VISl4.weight'" in message
    assert f"({projection.out_channels}, 5, {k}, {k}) in the file" in message
    assert f"needs ({projection.out_channels}, {projection.in_channels}, {k}, {k})" in message
    assert "classifier" not in message


def test_weights_of_another_network_name_both_hashes(small_ir, tmp_path):
    path = save_weights(tmp_path / "w.pt", small_ir, random_state(small_ir),
                        content_hash="f" * 64)
    with pytest.raises(BackendError, match=f"{'f' * 12} in the file, {small_ir.short_hash}"):
        compile_file(small_ir, path)


def test_missing_and_foreign_tensors(small_ir, tmp_path):
    state = random_state(small_ir)
    del state["norms.VISl5.running_var"]
    with pytest.raises(BackendError, match=r"tensor 'norms.VISl5.running_var' is missing.*\(10,\)"):
        compile_file(small_ir, save_weights(tmp_path / "a.pt", small_ir, state))
    state = random_state(small_ir)
    state["convs.VISp5__VISzz4.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(BackendError, match="'convs.VISp5__VISzz4.weight' in the file has no place"):
        compile_file(small_ir, save_weights(tmp_path / "b.pt", small_ir, state))


def test_bare_state_dict_is_refused_as_by_the_torch_backend(small_ir, tmp_path):
    import mnc
    from mnc_backends.torch.module import MouseNet
    from mnc_backends.torch.weights_io import load_weights

    state = random_state(small_ir)
    path = tmp_path / "bare.pt"
    torch.save({name: torch.from_numpy(np.asarray(value)) for name, value in state.items()}, path)
    message = rf"{path.name}: a bare state dict \(tensors without the IR"
    with pytest.raises(UserFileError, match=message):
        compile_file(small_ir, path)
    with pytest.raises(UserFileError, match=message):
        load_weights(MouseNet(small_ir), path)
    with pytest.raises(UserFileError, match=message):
        mnc.load(path)


@pytest.mark.parametrize(("content", "message"), [
    (b"not a torch file", "not a readable weights file"),
    (None, "no such weights file"),
])
def test_unreadable_weights_file(small_ir, tmp_path, content, message):
    path = tmp_path / "w.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserFileError, match=message):
        compile_file(small_ir, path)


def test_files_that_are_not_mnc_weights(small_ir, tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(UserFileError, match="found list"):
        compile_file(small_ir, tmp_path / "list.pt")
    torch.save({"format": "other", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(UserFileError, match="format is 'other'"):
        compile_file(small_ir, tmp_path / "other.pt")


def test_code_in_a_pickle_is_refused(small_ir, tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pt", "wb") as stream:
        pickle.dump({"state_dict": Payload()}, stream, protocol=2)
    with pytest.raises(UserFileError, match="print .*never loaded"):
        compile_file(small_ir, tmp_path / "evil.pt")
