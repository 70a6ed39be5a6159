"""Saved models and checkpoints: the file format, its checks, and loading weights into a model.

A file is a dict of plain containers written with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no pickled code)::

    {"format": "mnc.torch-model", "format_version": 1, "mnc_version": str,
     "content_hash": str, "ir_json": str, "state_dict": {name: tensor}}

Training checkpoints add optimizer and progress entries under "format": "mnc.torch-checkpoint".
The IR travels with the weights, so a file describes its own network, and weights are only
ever loaded into a network whose IR has the same content hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import mnc
from mnc.analysis.limits import check_memory
from mnc.errors import BackendError, UserFileError
from mnc.io.atomic import atomic_path
from mnc.ir.model import IR
from mnc.ir.serialize import ir_from_json, ir_to_json
from mnc.masks import check_file_masks
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.names import projection_key
from mnc_backends.torch.safe_load import load_tensors

MODEL_FORMAT = "mnc.torch-model"
CHECKPOINT_FORMAT = "mnc.torch-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("content_hash", "ir_json", "state_dict")
WRAPPER_PREFIXES = ("_orig_mod.", "module.")
"""Prefixes added by torch.compile and DistributedDataParallel to state-dict names."""


def model_payload(model: MouseNet) -> dict[str, Any]:
    """The saved-model dict of a network (tensors copied to the CPU)."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION,
            "mnc_version": mnc.__version__, "content_hash": model.ir.content_hash,
            "ir_json": ir_to_json(model.ir), "state_dict": state}


def save_model(model: MouseNet, path: str | Path) -> None:
    """Write the model atomically: readers see the old file or the complete new one."""
    payload = model_payload(model)
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def read_weights_file(path: str | Path) -> dict[str, Any]:
    """Read and check a saved model or checkpoint; raises UserFileError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise UserFileError(f"{path}: no such file (expected a model saved by "
                            f"`mnc compile --backend torch -o FILE.pt` or a training checkpoint)")
    payload = load_tensors(path, "mnc weights file")
    if not isinstance(payload, dict) or payload.get("format") not in (MODEL_FORMAT,
                                                                      CHECKPOINT_FORMAT):
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise UserFileError(f"{path}: format is {found!r}, expected {MODEL_FORMAT!r} or "
                            f"{CHECKPOINT_FORMAT!r}")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise UserFileError(f"{path}: format_version {version!r} is not supported "
                            f"(this mnc reads version {FORMAT_VERSION})")
    for key in REQUIRED_KEYS:
        if key not in payload:
            raise UserFileError(f"{path}: entry {key!r} is missing")
    if not isinstance(payload["state_dict"], dict):
        raise UserFileError(f"{path}: entry 'state_dict' is not a dict of tensors")
    return payload


def ir_from_payload(payload: Mapping[str, Any], origin: str) -> IR:
    """The IR a file holds, checked against the file's content hash."""
    ir = ir_from_json(payload["ir_json"], origin=f"{origin}: ir_json")
    if ir.content_hash != payload["content_hash"]:
        raise UserFileError(f"{origin}: content_hash {str(payload['content_hash'])[:12]} does "
                            f"not match the IR the file holds ({ir.short_hash})")
    return ir


def _strip_wrappers(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    stripped = {}
    for name, tensor in state.items():
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
        stripped[name] = tensor
    return stripped


def load_state(model: MouseNet, payload: Mapping[str, Any], origin: str) -> None:
    """Fill the model from a checked file payload; refuses weights of another network."""
    if payload["content_hash"] != model.ir.content_hash:
        raise BackendError(
            f"{origin}: weights are for IR {str(payload['content_hash'])[:12]}, but the model "
            f"was compiled from IR {model.ir.short_hash} (a different network); compile the "
            f"spec the weights were trained with, or load the file itself with mnc.load")
    state = _strip_wrappers(payload["state_dict"])
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            raise BackendError(f"{origin}: tensor {name!r} is missing from the state dict")
        found = state[name]
        if not isinstance(found, Tensor) or found.shape != tensor.shape:
            shape = tuple(found.shape) if isinstance(found, Tensor) else type(found).__name__
            raise BackendError(f"{origin}: tensor {name!r} has shape {shape}, the model "
                               f"expects {tuple(tensor.shape)}")
    extra = [name for name in state if name not in expected]
    if extra:
        raise BackendError(f"{origin}: tensor {extra[0]!r} in the file has no place in the "
                           f"model ({len(extra)} unexpected tensors)")
    check_file_masks(model.ir, file_masks(model.ir, state), origin)
    model.load_state_dict(state, strict=True)


def file_masks(ir: IR, state: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """The mask buffers of a state dict, by projection name."""
    masks = {}
    for projection in ir.projections:
        tensor = state.get(f"convs.{projection_key(projection.source, projection.target)}.mask")
        if isinstance(tensor, Tensor):
            masks[projection.name] = tensor.detach().cpu().float().numpy()
    return masks


def load_model(path: str | Path) -> MouseNet:
    """Rebuild a saved network from its file alone (IR, masks and weights)."""
    payload = read_weights_file(path)
    ir = ir_from_payload(payload, str(path))
    check_memory(ir, "build", origin=str(path))  # a small file can describe a huge network
    model = MouseNet(ir)
    load_state(model, payload, str(path))
    return model


def load_weights(model: MouseNet, path: str | Path) -> None:
    """Fill ``model`` from a saved model or checkpoint of the same IR."""
    load_state(model, read_weights_file(path), str(path))
