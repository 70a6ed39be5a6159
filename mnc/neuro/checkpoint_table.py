"""A CSV listing the checkpoints of any model's training: ``label,accuracy,weights``.

One row per checkpoint in training order; ``accuracy`` is the validation accuracy as a
fraction (0 to 1); ``weights`` a state dict file, relative to the CSV's folder unless
absolute. ``mnc rsa --model torchvision:NAME --layers ... --weights run.csv`` scores them
(comma-separate several CSVs for several training seeds).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnc.errors import UserFileError
from mnc.io.textfile import read_bounded_text

COLUMNS = ("label", "accuracy", "weights")
MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ListedCheckpoint:
    label: str
    accuracy: float
    weights: Path


def read_checkpoint_table(path: str | Path) -> list[ListedCheckpoint]:
    """The rows of a checkpoint CSV, each checked; one message naming file and line."""
    file = Path(path).expanduser()
    text = read_bounded_text(file, MAX_BYTES, "checkpoint table (CSV)")
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in (reader.fieldnames or [])]
    if tuple(header[:3]) != COLUMNS:
        raise UserFileError(
            f"{file}: line 1: expected the header {','.join(COLUMNS)}, got "
            f"{','.join(header) or 'nothing'}"
        )
    rows = [_checked_row(file, line, row) for line, row in enumerate(reader, start=2)]
    if not rows:
        raise UserFileError(f"{file}: lists no checkpoints")
    return rows


def _checked_row(file: Path, line: int, row: dict[str | None, Any]) -> ListedCheckpoint:
    """One row: label and weights given, accuracy a fraction, the weights file present."""
    values = {key.strip(): (value or "").strip() for key, value in row.items() if key}
    label, weights = values.get("label", ""), values.get("weights", "")
    if not label or not weights:
        raise UserFileError(f"{file}: line {line}: label and weights must not be empty")
    accuracy = _accuracy(file, line, values.get("accuracy", ""))
    target = Path(weights).expanduser()
    target = target if target.is_absolute() else file.parent / target
    if not target.is_file():
        raise UserFileError(f"{file}: line {line}: weights file {target} not found")
    return ListedCheckpoint(label, accuracy, target)


def _accuracy(file: Path, line: int, text: str) -> float:
    try:
        accuracy = float(text)
    except ValueError:
        raise UserFileError(
            f"{file}: line {line}: accuracy {text!r} is "
            f"not a number (expected a fraction from 0 to 1)"
        ) from None
    if not math.isfinite(accuracy) or not 0.0 <= accuracy <= 1.0:
        raise UserFileError(
            f"{file}: line {line}: accuracy {accuracy} is outside 0 to 1 "
            f"(give a fraction, e.g. 0.62 for 62 %)"
        )
    return accuracy
