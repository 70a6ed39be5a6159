"""The index of checkpoints a training run kept along the way (``mnc train --keep-checkpoints``).

Layout inside a run folder::

    checkpoints/epoch-0000.pt   the network before training (epoch 0)
    checkpoints/epoch-0003.pt   the network after 3 epochs
    checkpoints.json            [{"epoch", "step", "val_top1", "val_top5", "file"}, ...]
    checkpoints.csv             the same table, for spreadsheets

The trainer writes the index (backends/torch/training/keep.py); the neural comparison reads it
to score every kept checkpoint. Both sides go through this module, which needs no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mnc.errors import UserFileError
from mnc.io import strict_json
from mnc.io.atomic import write_text_atomic
from mnc.io.textfile import TextFileError, read_json_file
from mnc.text import shown

FOLDER = "checkpoints"
INDEX_JSON = "checkpoints.json"
INDEX_CSV = "checkpoints.csv"
MAX_INDEX_BYTES = 64 * 1024 * 1024
COLUMNS = ("epoch", "step", "val_top1", "val_top5", "file")


@dataclass(frozen=True)
class KeptCheckpoint:
    epoch: int
    """Epochs finished when the checkpoint was written (0: before training)."""
    step: int
    """Optimizer steps taken."""
    val_top1: float
    val_top5: float
    file: str
    """Path relative to the run folder."""

    def path(self, run: Path) -> Path:
        return run / self.file

    @property
    def name(self) -> str:
        return Path(self.file).stem


def file_name(epoch: int) -> str:
    return f"{FOLDER}/epoch-{epoch:04d}.pt"


def has_index(run: Path) -> bool:
    return (Path(run) / INDEX_JSON).is_file()


def read_index(run: str | Path) -> list[KeptCheckpoint]:
    """The kept checkpoints of a run folder, by epoch; one clear error if the index is bad."""
    folder = Path(run)
    path = folder / INDEX_JSON
    if not path.is_file():
        raise UserFileError(f"{folder}: no {INDEX_JSON}; train with --keep-checkpoints "
                            f"(e.g. --keep-checkpoints 0,every:1) to keep checkpoints")
    try:
        entries = read_json_file(path, MAX_INDEX_BYTES, "JSON checkpoint index")
    except TextFileError as error:
        raise UserFileError(str(error)) from None
    if not isinstance(entries, list):
        raise UserFileError(f"{path}: expected a list of checkpoints, got "
                            f"{type(entries).__name__}")
    kept = [_entry(folder, path, number, entry) for number, entry in enumerate(entries)]
    return sorted(kept, key=lambda item: item.epoch)


def _entry(folder: Path, path: Path, number: int, entry: Any) -> KeptCheckpoint:
    """Entry ``number`` of the index at ``path`` (as JSON gave it), checked: every column,
    counts, fractions, and a file inside the run folder."""
    missing = [key for key in COLUMNS if not isinstance(entry, dict) or key not in entry]
    if missing:
        raise UserFileError(f"{path}: entry {number}: missing {', '.join(missing)}")
    where = f"{shown(path)}: entry {number}"
    try:
        item = KeptCheckpoint(epoch=_count(entry["epoch"], f"{where}: epoch"),
                              step=_count(entry["step"], f"{where}: step"),
                              val_top1=_fraction(entry["val_top1"]),
                              val_top5=_fraction(entry["val_top5"]), file=str(entry["file"]))
    except (TypeError, ValueError, OverflowError) as error:
        raise UserFileError(f"{where}: {error}") from None
    if not all(math.isnan(v) or 0 <= v <= 1 for v in (item.val_top1, item.val_top5)):
        raise UserFileError(f"{where}: val_top1 and val_top5 must be fractions from 0 to 1 "
                            f"(or NaN), got {item.val_top1!r}, {item.val_top5!r}")
    _check_inside(folder, item.file, where)
    return item


def _check_inside(folder: Path, file: str, where: str) -> None:
    """``file`` names a path inside the run folder, through no symbolic link out of it."""
    if Path(file).is_absolute() or ".." in Path(file).parts:
        raise UserFileError(f"{where}: file {shown(file)!r} must be a path "
                            f"inside the run folder")
    inside = folder.resolve()
    target = (folder / file).resolve()
    if not target.is_relative_to(inside):
        raise UserFileError(f"{where}: file {shown(file)!r} leads out of the run "
                            f"folder (to {shown(str(target))}) through a symbolic link")


def _fraction(value: object) -> float:
    """An accuracy from JSON; null is NaN (no validation images), as strict JSON writes it."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _count(value: object, where: str) -> int:
    """A whole number of at least 0 from JSON (``3`` or ``3.0``; not true, 1.5, NaN or inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserFileError(f"{where}: expected a whole number, got {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise UserFileError(f"{where}: expected a whole number, got {value!r}")
    if value < 0:
        raise UserFileError(f"{where}: expected a whole number of at least 0, got {value!r}")
    return int(value)


def write_index(run: str | Path, kept: list[KeptCheckpoint]) -> None:
    """Rewrite checkpoints.json and checkpoints.csv (each atomically), sorted by epoch."""
    folder = Path(run)
    ordered = sorted(kept, key=lambda item: item.epoch)
    write_text_atomic(folder / INDEX_JSON,
                      strict_json.dumps([asdict(item) for item in ordered], indent=1) + "\n")
    lines = [",".join(COLUMNS)]
    for item in ordered:
        values = asdict(item)
        lines.append(",".join(_cell(values[column]) for column in COLUMNS))
    write_text_atomic(folder / INDEX_CSV, "\n".join(lines) + "\n")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)
