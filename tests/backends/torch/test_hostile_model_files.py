"""Model files and checkpoints edited to break the network they describe: refused, by name.

Each hostile file keeps a consistent content hash (anyone can recompute it), so only the IR
invariants and the mask check stand between it and the native kernel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import mnc
from mnc.errors import UserFileError
from mnc.ir.model import IR
from mnc.ir.serialize import ir_to_json
from mnc_backends.torch import MouseNet
from mnc_backends.torch.training.model import ir_of
from mnc_backends.torch.weights_io import save_model
from tests.conftest import run_mnc

pytestmark = pytest.mark.torch

BAD_PADDING = [-20000000, 0, -20000000, 0]


def _payload(ir: IR, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "good.pt"
    save_model(MouseNet(ir), path)
    return torch.load(path, weights_only=True)


def _with_ir(payload: dict[str, Any], edit) -> dict[str, Any]:  # noqa: ANN001
    data = json.loads(payload["ir_json"])
    data.pop("content_hash")
    edit(data)
    ir = IR.model_validate(data)
    return {**payload, "ir_json": ir_to_json(ir), "content_hash": ir.content_hash}


def _bad_padding(data: dict[str, Any]) -> None:
    data["projections"][12]["padding_lrtb"] = BAD_PADDING


def test_model_file_with_an_out_of_range_padding_is_refused(tiny_ir, tmp_path: Path):
    path = tmp_path / "bad.pt"
    torch.save(_with_ir(_payload(tiny_ir, tmp_path), _bad_padding), path)
    with pytest.raises(UserFileError) as caught:
        mnc.load(path)
    assert str(path) in str(caught.value)
    assert "projections[12].padding_lrtb" in str(caught.value)


def test_evaluate_refuses_the_file_with_one_message(tiny_ir, tmp_path: Path):
    path = tmp_path / "bad.pt"
    torch.save(_with_ir(_payload(tiny_ir, tmp_path), _bad_padding), path)
    result = run_mnc("evaluate", str(path), timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "projections[12].padding_lrtb" in result.stderr


def test_checkpoint_ir_is_checked_before_training_resumes(tiny_ir, tmp_path: Path):
    payload = _with_ir(_payload(tiny_ir, tmp_path), _bad_padding)
    with pytest.raises(UserFileError, match=r"(?s)last\.pt.*projections\[12\]\.padding_lrtb"):
        ir_of(payload, "run/last.pt")


def _all_ones_mask(payload: dict[str, Any], key: str = "VISp4__VISl4") -> dict[str, Any]:
    state = dict(payload["state_dict"])
    state[f"convs.{key}.mask"] = torch.ones_like(state[f"convs.{key}.mask"])
    return {**payload, "state_dict": state}


def test_mask_replaced_by_all_ones_is_refused_naming_the_projection(tiny_ir, tmp_path: Path):
    path = tmp_path / "ones.pt"
    torch.save(_all_ones_mask(_payload(tiny_ir, tmp_path)), path)
    with pytest.raises(UserFileError) as caught:
        mnc.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 1 connection masks are not the ones the IR prescribes")
    assert "VISp4->VISl4:" in message and "gaussian mask of seed 0" in message


def test_checkpoint_masks_are_checked_before_training_resumes(tiny_ir, tmp_path: Path):
    from mnc_backends.torch.training.model import build_model, load_state

    payload = _all_ones_mask(_payload(tiny_ir, tmp_path))
    with pytest.raises(UserFileError, match="VISp4->VISl4"):
        load_state(build_model(tiny_ir), payload["state_dict"], "run/last.pt")


@pytest.mark.parametrize("mode", ["none", "expected", "learnable"])
def test_masks_of_every_mode_load_and_are_checked(tiny_ir, ir_editor, tmp_path: Path,
                                                  mode: str):
    ir = ir_editor(tiny_ir, mode=mode)
    payload = _payload(ir, tmp_path)
    path = tmp_path / "same.pt"
    torch.save(payload, path)
    assert mnc.load(path).ir == ir
    state = dict(payload["state_dict"])
    state["convs.VISp4__VISl4.mask"] = state["convs.VISp4__VISl4.mask"] * 0.5
    torch.save({**payload, "state_dict": state}, path)
    with pytest.raises(UserFileError, match=f"VISp4->VISl4: .* the {mode} mask"):
        mnc.load(path)
