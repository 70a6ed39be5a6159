"""Saved models as safetensors files: the weights, with the IR and its hash in the header.

safetensors is the weights format of the Hugging Face ecosystem: an 8-byte header length, a
JSON header (each tensor's dtype, shape and byte range, plus a ``__metadata__`` map of
strings) and the raw tensor bytes. Nothing in it is pickled, so reading one never runs code
from the file. mnc writes a saved model's entries as that metadata::

    {"format": "mnc.torch-model", "format_version": "1", "mnc_version": str,
     "content_hash": str, "ir_json": str}

and the state dict (``mnc.lowering.weights_format``) as the tensors; reading it back gives
the same payload ``torch.load`` gives for a ``.pt`` file, checked by the same rules (the IR
against its hash, the tensors against the IR). A file is recognised by its content, not its
name: a ``.pt`` file is a zip archive, a safetensors file starts with its header's length.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mnc.analysis.limits import memory_problem
from mnc.errors import SizeLimitError, UserFileError
from mnc.io.atomic import atomic_path
from mnc_backends.torch.safe_load import load_tensors

SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 100_000_000
"""The largest header the safetensors library itself reads."""
TEXT_ENTRIES = ("format", "mnc_version", "content_hash", "ir_json")


def is_safetensors(path: str | Path) -> bool:
    """Whether ``path`` begins as a safetensors file does (a header length, then ``{``)."""
    try:
        with open(path, "rb") as stream:
            start = stream.read(9)
    except OSError:
        return False
    if len(start) < 9 or start[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", start[:8])
    return 2 <= length <= MAX_HEADER_BYTES


def save_safetensors(payload: Mapping[str, Any], path: str | Path) -> None:
    """Write a saved-model payload (``weights_io.model_payload``) atomically."""
    from safetensors.torch import save_file

    metadata = {key: str(payload[key]) for key in TEXT_ENTRIES}
    metadata["format_version"] = str(payload["format_version"])
    tensors = {
        name: tensor.detach().cpu().contiguous() for name, tensor in payload["state_dict"].items()
    }
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


def read_safetensors(path: str | Path, what: str) -> dict[str, Any]:
    """The payload a safetensors file holds (its metadata entries and ``state_dict``);
    UserFileError naming ``path`` when it is not a well-formed one, SizeLimitError when its
    tensors would take more than the memory limit."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:  # pragma: no cover - a core dependency
        raise UserFileError(
            f"{path}: reading safetensors files needs the safetensors "
            f"package (pip install safetensors)"
        ) from None
    size = Path(path).stat().st_size
    problem = memory_problem("reading its tensors", size)
    if problem is not None:
        raise SizeLimitError(f"{path}: {problem}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as opened:
            metadata = opened.metadata()
            state = {name: opened.get_tensor(name) for name in opened.keys()}  # noqa: SIM118
    except (
        SafetensorError,
        OSError,
        ValueError,
        RuntimeError,
        TypeError,
        json.JSONDecodeError,
    ) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise UserFileError(
            f"{path}: not a readable {what} (a malformed safetensors file: {reason})"
        ) from None
    if not metadata or "format" not in metadata:
        raise UserFileError(
            f"{path}: a safetensors file without mnc's metadata (tensors without the IR they "
            f"belong to); mnc reads safetensors files it wrote, which carry their network's "
            f"IR (`mnc compile SPEC -o FILE.safetensors` writes one)"
        )
    payload: dict[str, Any] = dict(metadata)
    version = metadata.get("format_version")
    payload["format_version"] = int(version) if str(version).isdigit() else version
    payload["state_dict"] = state
    return payload


def read_payload(path: str | Path, what: str) -> Any:  # noqa: ANN401 - whatever the file holds
    """The contents of an mnc file in either format: safetensors (recognised by its first
    bytes or its suffix) or ``torch.save``'s, read weights-only (``safe_load``)."""
    if is_safetensors(path) or Path(path).suffix == SUFFIX:
        return read_safetensors(path, what)
    return load_tensors(path, what)
