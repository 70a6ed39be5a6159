"""Read an ONNX model and its external data files with one bound on the bytes read.

onnx.load follows a tensor's ``location`` wherever it points and reads whole files, so the
model is parsed from bounded bytes without external data, and each external tensor is then
read here: only from a regular file inside the model's folder (no absolute path, no ``..``,
no symbolic link out of it), and only while the model and all its tensors stay within the
memory limit. Every problem is one UserFileError naming the model and the location.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

from mnc.analysis.limits import current_limits, remedy
from mnc.analysis.memory import format_bytes
from mnc.errors import SizeLimitError, UserFileError
from mnc.io.textfile import TextFileError, read_bounded_bytes


def load_bounded(path: Path) -> onnx.ModelProto:
    """The model at ``path`` with its external tensors read in, within the memory limit."""
    limit = current_limits().max_memory_bytes
    try:
        raw = read_bounded_bytes(path, limit, "ONNX model")
    except TextFileError as error:
        if error.reason.startswith("holds more than"):
            raise SizeLimitError(f"{path}: {error.reason} ({_raise_hint()})") from None
        raise UserFileError(str(error)) from None
    try:
        model = onnx.load_model_from_string(raw)
    except (DecodeError, ValueError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else \
            type(error).__name__
        raise UserFileError(f"{path}: not a readable ONNX model ({reason})") from None
    _read_external(path, model, limit - len(raw))
    return model


def _raise_hint() -> str:
    return remedy("--max-memory-mb", "MNC_MAX_MEMORY_MB")


def _read_external(path: Path, model: onnx.ModelProto, budget: int) -> None:
    folder = path.resolve().parent
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        location = str(info.location)
        problem = f"{path}: tensor {tensor.name!r}: external data {location!r}"
        file = _inside(folder, location, problem)
        try:
            with open(file, "rb", buffering=0) as stream:
                status = os.fstat(stream.fileno())
                if not stat.S_ISREG(status.st_mode):
                    raise UserFileError(f"{problem} is not a regular file")
                offset = int(info.offset or 0)
                length = int(info.length) if info.length else status.st_size - offset
                if offset < 0 or length < 0 or offset + length > status.st_size:
                    raise UserFileError(f"{problem}: offset {offset} and length {length} lie "
                                        f"outside the file's {status.st_size:,} bytes")
                budget -= length
                if budget < 0:
                    raise SizeLimitError(
                        f"{problem}: the model and its external data hold more than "
                        f"{format_bytes(current_limits().max_memory_bytes)} "
                        f"({_raise_hint()})")
                stream.seek(offset)
                data = stream.read(length)
        except OSError as error:
            raise UserFileError(f"{problem}: {error.strerror or error}") from None
        if len(data) != length:
            raise UserFileError(f"{problem}: the file ended before {length:,} bytes were read")
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _inside(folder: Path, location: str, problem: str) -> Path:
    """The external file, refused unless it names a file inside the model's folder."""
    relative = PurePath(location)
    if not location or relative.is_absolute() or ".." in relative.parts or \
            location.startswith(("/", "\\")):
        raise UserFileError(f"{problem} is not a file name inside the model's folder "
                            f"{folder} (absolute paths and '..' are refused)")
    file = (folder / relative).resolve()
    if not file.is_relative_to(folder):
        raise UserFileError(f"{problem} leads outside the model's folder {folder}")
    if not file.exists():
        raise UserFileError(f"{problem}: no such file in {folder}")
    return file
