"""Options of the ONNX backend: the typed model behind ``BackendOptions.extra`` and the
``mnc compile --backend onnx`` flags."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mnc.errors import UserFileError
from mnc.io.textfile import TextFileError, read_bounded_text
from mnc.text import unsafe_character

from .graph import DEFAULT_OPSET

MAX_CLASS_NAMES_BYTES = 4 * 1024 * 1024


class OnnxOptions(BaseModel):
    """What ``mnc compile --backend onnx`` and ``mnc.compile(..., backend="onnx")`` accept."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, arbitrary_types_allowed=True
    )

    opset: int = DEFAULT_OPSET
    """ONNX opset version, 17 or newer"""
    fp16: bool = False
    """store weights and compute in half precision (input and outputs stay float32)"""
    merge_convolutions: bool = Field(default=True, json_schema_extra={"flag": "merge-convs"})
    """one Conv per source, stride, upsampling and delay instead of one per projection (in
    float32 and float16): about 2x faster on onnxruntime's CPU provider"""
    class_names: list[str] | None = Field(
        default=None, json_schema_extra={"flag_type": "path", "metavar": "FILE"}
    )
    """text file with one class name per line, shown by predict"""
    state_dict: Mapping[str, Any] | None = Field(default=None, json_schema_extra={"flag": None})
    """tensor name -> array or tensor, instead of a weights file (Python API only)"""

    @field_validator("opset", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"opset must be an integer, not {value!r}")
        return value

    @field_validator("class_names", mode="before")
    @classmethod
    def _names_from_file(cls, value: Any) -> Any:
        return read_class_names(value) if isinstance(value, Path) else value


def read_class_names(path: Path) -> list[str]:
    """One class name per non-empty line of ``path``; control characters are refused."""
    try:
        text = read_bounded_text(path, MAX_CLASS_NAMES_BYTES, "class-name file")
    except TextFileError as error:
        raise UserFileError(f"{error.path}: cannot read class names: {error.reason}") from None
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        bad = unsafe_character(name)
        if bad is not None:
            raise UserFileError(f"{path}:{number}: class name holds the control or "
                                f"direction character {bad!r}; expected printable text")
        names.append(name)
    if not names:
        raise UserFileError(f"{path}: expected one class name per line, found none")
    return names
