"""Saved models and checkpoints: the file format, its checks, and loading weights into a model.

A file is a dict of plain containers written with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no pickled code)::

    {"format": "mnc.torch-model", "format_version": 1, "mnc_version": str,
     "content_hash": str, "ir_json": str, "state_dict": {name: tensor}}

or the same entries as a safetensors file (``safetensors_io``: the tensors, the rest as
header metadata), which ``load_model`` recognises by its content.

Training checkpoints add optimizer and progress entries under "format": "mnc.torch-checkpoint".
The IR travels with the weights, so a file describes its own network, and weights are only
ever loaded into a network whose IR has the same content hash. The format and its checks are
defined once in ``mnc.lowering.weights_format``; this module adds torch's reading and writing.
It sits below the network it reads and writes, which it names for type checking only:
``load_model`` is handed the class to build (``MouseNet``), so ``MouseNet.save_pretrained``
and ``MouseNet.from_pretrained`` (``pretrained``) use this module without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mnc.analysis.limits import check_memory
from mnc.errors import UserFileError
from mnc.ir.serialize import ir_to_json
from mnc.lowering.weights_format import (
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    MODEL_FORMAT,
    check_content_hash,
    check_header,
    check_state,
    file_masks,
    ir_from_payload,
    strip_wrappers,
)
from mnc.masks import check_file_masks
from mnc.version import __version__
from mnc_backends.torch.safe_save import save_torch_file
from mnc_backends.torch.safetensors_io import SUFFIX, read_payload, save_safetensors

if TYPE_CHECKING:
    from mnc_backends.torch.module import MouseNet

Network = TypeVar("Network", bound="MouseNet")

__all__ = ["CHECKPOINT_FORMAT", "FORMAT_VERSION", "MODEL_FORMAT", "ir_from_payload",
           "load_model", "load_state", "load_state_dict", "load_weights", "model_payload",
           "read_weights_file", "save_model"]


def model_payload(model: MouseNet) -> dict[str, Any]:
    """The saved-model dict of a network (tensors copied to the CPU)."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION,
            "mnc_version": __version__, "content_hash": model.ir.content_hash,
            "ir_json": ir_to_json(model.ir), "state_dict": state}


def save_model(model: MouseNet, path: str | Path) -> None:
    """Write the model atomically: readers see the old file or the complete new one. A path
    ending in ``.safetensors`` gets a safetensors file (``safetensors_io``), any other a
    ``torch.save`` one."""
    payload = model_payload(model)
    if Path(path).suffix == SUFFIX:
        save_safetensors(payload, path)
        return
    save_torch_file(payload, path)


def read_weights_file(path: str | Path) -> dict[str, Any]:
    """Read and check a saved model or checkpoint; raises UserFileError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise UserFileError(f"{path}: no such file (expected a model saved by "
                            f"`mnc compile --backend torch -o FILE.pt` (or FILE.safetensors) "
                            f"or a training checkpoint)")
    return check_header(read_payload(path, "mnc weights file"), str(path))


def load_state_dict(model: MouseNet, state: Mapping[str, Any], origin: str) -> None:
    """Fill the model from a state dict (wrapper prefixes allowed); names, shapes and masks
    are checked against the model's IR first, so nothing is half loaded."""
    state = strip_wrappers(state)
    check_state(model.ir, state, origin, strict=True)
    check_file_masks(model.ir, file_masks(model.ir, state), origin)
    model.load_state_dict(state, strict=True)


def load_state(model: MouseNet, payload: Mapping[str, Any], origin: str) -> None:
    """Fill the model from a checked file payload; refuses weights of another network."""
    check_content_hash(payload["content_hash"], model.ir, origin)
    load_state_dict(model, payload["state_dict"], origin)


def load_model(path: str | Path, network: type[Network]) -> Network:
    """Rebuild a saved network from its file alone (IR, masks and weights), as a ``network``
    (``MouseNet``, or the subclass ``from_pretrained`` is called on)."""
    payload = read_weights_file(path)
    ir = ir_from_payload(payload, str(path))
    check_memory(ir, "build", origin=str(path))  # a small file can describe a huge network
    model = network(ir)
    load_state(model, payload, str(path))
    return model


def load_weights(model: MouseNet, path: str | Path) -> None:
    """Fill ``model`` from a saved model or checkpoint of the same IR."""
    load_state(model, read_weights_file(path), str(path))
