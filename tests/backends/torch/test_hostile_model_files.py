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
