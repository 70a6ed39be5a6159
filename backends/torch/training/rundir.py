"""The run directory: what a training run records, and refusing to overwrite one by accident.

Layout::

    config.yaml     the resolved training config (every field, after defaults)
    run.json        IR content hash, spec file, mnc and torch versions, world size
    ir.json         the compiled IR (the network is rebuilt from it, not from the spec)
    spec/<file>     a copy of each spec file merged into the network (base first)
    metrics.jsonl   one JSON line per finished epoch
    last.pt         the newest checkpoint (every epoch, every N steps, on SIGINT/SIGTERM)
    best.pt         the checkpoint with the best validation top-1 so far
    checkpoints/    checkpoints kept along training (--keep-checkpoints), indexed by
    checkpoints.json  epoch, step, validation top-1 and file (also as checkpoints.csv)
    curves.png      written by ``mnc plot``
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from mnc import __version__
from mnc.errors import UserFileError
from mnc.io import checkpoint_index
from mnc.io.atomic import write_text_atomic
from mnc.ir.model import IR
from mnc.ir.serialize import ir_to_json

LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
RESULT_FILES = (LAST, BEST, METRICS, CONFIG, "run.json", "ir.json", "curves.png",
                checkpoint_index.INDEX_JSON, checkpoint_index.INDEX_CSV)


def existing_results(folder: Path) -> list[str]:
    return [name for name in RESULT_FILES if (folder / name).exists()]


def prepare(folder: Path, *, resume: bool, force: bool) -> None:
    """Make sure ``folder`` may receive this run; ``force`` deletes an old run's results."""
    if folder.exists() and not folder.is_dir():
        raise UserFileError(f"{folder}: exists and is not a folder; choose another -o")
    found = existing_results(folder) if folder.is_dir() else []
    if resume:
        if not (folder / LAST).is_file():
            raise UserFileError(f"{folder}: nothing to resume (no {LAST}); start the run "
                                f"without --resume")
        remove_partial_writes(folder)
        return
    if found and not force:
        raise UserFileError(f"{folder}: already holds a training run ({', '.join(found)}); "
                            f"pass --resume {folder} to continue it or --force to start over "
                            f"(deletes its results)")
    for name in found:
        (folder / name).unlink()
    if folder.is_dir():
        remove_partial_writes(folder)
    if force and (folder / "spec").is_dir():
        shutil.rmtree(folder / "spec")
    if force and (folder / checkpoint_index.FOLDER).is_dir():
        shutil.rmtree(folder / checkpoint_index.FOLDER)
    folder.mkdir(parents=True, exist_ok=True)


def remove_partial_writes(folder: Path) -> None:
    """Delete temporary files a killed run left behind (atomic writes that never finished)."""
    for name in RESULT_FILES:
        for leftover in folder.glob(f".{name}.*.part"):
            leftover.unlink(missing_ok=True)


def record(folder: Path, config: dict[str, Any], ir: IR, spec_files: list[Path],
           world_size: int) -> None:
    """Write the resolved config, the IR, the spec copies and run.json."""
    write_config(folder, config)
    write_text_atomic(folder / "ir.json", ir_to_json(ir))
    copies = []
    for number, file in enumerate(spec_files):
        if file.is_file():
            destination = folder / "spec" / f"{number:02d}-{file.name}"
            write_text_atomic(destination, file.read_text(encoding="utf-8"))
            copies.append(str(destination.relative_to(folder)))
    info = {"content_hash": ir.content_hash, "spec_name": ir.name,
            "spec_files": [str(file) for file in spec_files], "spec_copies": copies,
            "mnc_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "world_size": world_size}
    write_text_atomic(folder / "run.json", json.dumps(info, indent=1) + "\n")


def write_config(folder: Path, config: dict[str, Any]) -> None:
    write_text_atomic(folder / CONFIG, yaml.safe_dump(config, sort_keys=False))


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl from the checkpoint's history (so the two always agree)."""
    write_text_atomic(folder / METRICS,
                      "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in history))


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    file = folder / METRICS if folder.is_dir() else folder
    if not file.is_file():
        raise UserFileError(f"{file}: no such metrics log (expected a run folder of mnc train)")
    entries = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserFileError(f"{file}:{number}: not JSON ({error.msg})") from None
        if not isinstance(entry, dict) or "epoch" not in entry:
            raise UserFileError(f"{file}:{number}: expected an object with an 'epoch' field")
        entries.append(entry)
    return entries
