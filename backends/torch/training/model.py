"""Build the network for training through the public API, and load weights into it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from mnc.errors import BackendError, UserFileError
from mnc.ir.model import IR
from mnc.ir.serialize import ir_from_dict
from mnc.masks import check_file_masks
from mnc_backends.torch.weights_io import file_masks


def build_model(ir: IR, strategy: str = "auto") -> torch.nn.Module:
    """``mnc.compile(ir, backend="torch")``: the same module every other command gets, with
    the execution strategy ``strategy``."""
    import mnc

    model = mnc.compile(ir, backend="torch", strategy=strategy)
    if not isinstance(model, torch.nn.Module):
        raise BackendError(f"the torch backend returned {type(model).__name__}, not a Module")
    return model


def ir_of(content: dict[str, Any], origin: str) -> IR:
    """The IR stored in a checkpoint or saved model (its content hash is checked)."""
    text = content["ir_json"]
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as error:
        raise UserFileError(f"{origin}: ir_json is not JSON ({error.msg})") from None
    except RecursionError:
        raise UserFileError(f"{origin}: ir_json is JSON nested too deeply") from None
    return ir_from_dict(data, origin)


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Strict load; a mismatch names the first differing tensor and both shapes."""
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    if missing or unexpected:
        raise BackendError(f"{origin}: weights do not fit the network (missing: "
                           f"{missing[:3]}, unexpected: {unexpected[:3]})")
    for key, tensor in own.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise BackendError(f"{origin}: tensor {key} has shape {tuple(state[key].shape)}, "
                               f"the network expects {tuple(tensor.shape)}")
    ir = getattr(unwrap(model), "ir", None)
    if isinstance(ir, IR):  # names as in the weights contract, whatever wraps the model
        plain = {key.removeprefix("module.").removeprefix("_orig_mod."): tensor
                 for key, tensor in state.items()}
        check_file_masks(ir, file_masks(ir, plain), origin)
    model.load_state_dict(state, strict=True)


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer: equal on all DDP ranks when they agree."""
    digest = hashlib.sha256()
    for key, tensor in sorted(unwrap(model).state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel (its state-dict keys lack ``module.``)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
