"""The run directory: what a training run records, and refusing to overwrite one by accident.

Layout::

    config.yaml     the resolved training config (every field, after defaults)
    run.json        IR content hash, spec file, mnc and torch versions, world size
    ir.json         the compiled IR (the network is rebuilt from it, not from the spec)
    spec/<file>     a copy of each spec file merged into the network (base first)
    metrics.jsonl   one JSON line per finished epoch
    last.pt         the newest checkpoint (every epoch, every N steps, on SIGINT/SIGTERM)
    best.pt         the checkpoint with the best validation top-1 so far
    best.safetensors  its network's weights, IR and hash (safetensors: no optimizer state)
    checkpoints/    checkpoints kept along training (--keep-checkpoints), indexed by
    checkpoints.json  epoch, step, validation top-1 and file (also as checkpoints.csv)
    curves.png      written by ``mnc plot``
    manifest.json   the files above that this run writes: ``--force`` deletes only those
    .mnc-train.lock locked by the one process writing to the folder (removed at its end)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
from pathlib import Path
from typing import IO, Any

import torch
import yaml

from mnc.errors import UserFileError
from mnc.io import checkpoint_index, strict_json
from mnc.io.atomic import remove_stale_parts, write_text_atomic
from mnc.io.textfile import TextFileError, parse_json, read_bounded_text, read_json_file
from mnc.ir.model import IR
from mnc.ir.serialize import ir_to_json
from mnc.spec.yaml_reader import MAX_FILE_BYTES
from mnc.version import __version__

LAST = "last.pt"
BEST = "best.pt"
BEST_WEIGHTS = "best.safetensors"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
MAX_METRICS_BYTES = 64 * 1024 * 1024
RESULT_FILES = (LAST, BEST, BEST_WEIGHTS, METRICS, CONFIG, "run.json", "ir.json", "curves.png",
                checkpoint_index.INDEX_JSON, checkpoint_index.INDEX_CSV)


MANIFEST = "manifest.json"
"""The files this run writes, relative to the run folder: ``--force`` removes only these."""
MANIFEST_FORMAT = "mnc.run-manifest"
LOCK = ".mnc-train.lock"
"""Held (``flock``) by the one process that writes to the run folder."""
WRITTEN_FOLDERS = ("spec", checkpoint_index.FOLDER)
MAX_RECORD_BYTES = 16 * 1024 * 1024
"""Largest manifest, run.json or checkpoint index read back from a run folder."""

_held_locks: dict[str, IO[str]] = {}


def existing_results(folder: Path) -> list[str]:
    return [name for name in (*RESULT_FILES, MANIFEST) if (folder / name).exists()]


def lock(folder: Path) -> None:
    """Take the run folder's lock (creating the folder), or refuse: another run writes there.

    Two ``mnc train`` (or two ``--resume``) on one folder would mix their checkpoints and
    metrics. Only the main process of a run calls this; ``unlock`` (or the process ending)
    releases it.
    """
    if folder.exists() and not folder.is_dir():
        raise UserFileError(f"{folder}: exists and is not a folder; choose another -o")
    key = os.path.realpath(folder)
    busy = UserFileError(f"{folder}: another mnc train is writing to this run folder (it "
                         f"holds {folder / LOCK}); wait for it to end or choose another -o")
    if key in _held_locks:
        raise busy
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / LOCK, "a", encoding="utf-8")
        except OSError as error:
            raise UserFileError(f"{folder}: cannot use as a run folder "
                                f"({error.strerror})") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise busy from None
        if _names_open_file(folder / LOCK, handle):
            break
        handle.close()  # the run before removed the file while we waited: take a fresh one
    _held_locks[key] = handle


def _names_open_file(path: Path, handle: IO[str]) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(handle.fileno()))
    except FileNotFoundError:
        return False


def unlock(folder: Path) -> None:
    """Release the lock and remove its file, so no lock file outlives its run.

    The file is removed while still locked; a run that opened it meanwhile sees, once it gets
    the lock, that the name no longer leads to its file and takes a fresh one.
    """
    handle = _held_locks.pop(os.path.realpath(folder), None)
    if handle is not None:
        with contextlib.suppress(OSError):
            if _names_open_file(folder / LOCK, handle):
                os.unlink(folder / LOCK)
        handle.close()


def check_inputs(folder: Path, inputs: list[Path]) -> None:
    """Refuse inputs (spec files, config) that lie where the run writes or removes files."""
    root = os.path.realpath(folder)
    for given in inputs:
        inside = os.path.relpath(os.path.realpath(given), root)
        first = inside.split(os.sep, 1)[0]
        if inside.startswith("..") or not (
            inside in (*RESULT_FILES, MANIFEST, LOCK) or first in WRITTEN_FOLDERS
        ):
            continue
        raise UserFileError(f"{given}: is an input of this run but lies in its run folder "
                            f"{folder}, where mnc train writes {inside}; move it or choose "
                            f"another -o")


def prepare(folder: Path, *, resume: bool, force: bool) -> list[str]:
    """Make sure ``folder`` may receive this run; ``force`` deletes an old run's results.

    Only files a record of the old run lists are deleted (its manifest, else run.json and the
    fixed result names); the relative paths of the files left behind are returned.
    """
    if folder.exists() and not folder.is_dir():
        raise UserFileError(f"{folder}: exists and is not a folder; choose another -o")
    found = existing_results(folder) if folder.is_dir() else []
    if resume:
        if not (folder / LAST).is_file():
            raise UserFileError(f"{folder}: nothing to resume (no {LAST}); start the run "
                                f"without --resume")
        remove_partial_writes(folder)
        return []
    if found and not force:
        raise UserFileError(f"{folder}: already holds a training run ({', '.join(found)}); "
                            f"pass --resume {folder} to continue it or --force to start over "
                            f"(deletes its results)")
    kept: list[str] = []
    if folder.is_dir():
        remove_partial_writes(folder)
        if force:
            kept = _remove_written(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return kept


def _remove_written(folder: Path) -> list[str]:
    """Delete the files an old run's records list; the relative paths of the others."""
    root = os.path.realpath(folder)
    for name in written_files(folder):
        path = Path(root) / name
        parent = os.path.realpath(path.parent)
        if os.path.commonpath([parent, root]) == root and (path.is_file() or path.is_symlink()):
            path.unlink()
    for name in WRITTEN_FOLDERS:
        with contextlib.suppress(OSError):
            (folder / name).rmdir()  # only when empty: what is left there is not mnc's
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if not path.is_dir() and path.name != LOCK)


def written_files(folder: Path) -> list[str]:
    """Relative paths mnc recorded writing in ``folder``, each checked to stay inside it."""
    manifest = _read_record(folder / MANIFEST)
    if isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT:
        listed = manifest.get("files")
    else:  # a run folder from before manifests: the fixed names and run.json's spec copies
        info = _read_record(folder / "run.json")
        copies = info.get("spec_copies") if isinstance(info, dict) else None
        listed = [*RESULT_FILES, *(copies if isinstance(copies, list) else [])]
    names = [name for name in listed if isinstance(name, str)] if isinstance(listed, list) else []
    if checkpoint_index.INDEX_JSON in names:
        index = _read_record(folder / checkpoint_index.INDEX_JSON)
        for entry in index if isinstance(index, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                names.append(entry["file"])
    return [name for name in names if _inside(name)]


def _inside(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def _read_record(file: Path) -> Any:
    """A JSON record of the run, or None if it is missing or unreadable (then it lists nothing)."""
    if not file.is_file():
        return None
    try:
        return read_json_file(file, MAX_RECORD_BYTES, "JSON record of the run")
    except UserFileError:
        return None


def write_manifest(folder: Path, spec_copies: list[str]) -> None:
    files = [MANIFEST, *RESULT_FILES, *spec_copies]
    write_text_atomic(folder / MANIFEST, strict_json.dumps(
        {"format": MANIFEST_FORMAT, "files": files}, indent=1) + "\n")


def remove_partial_writes(folder: Path) -> None:
    """Delete temporary files killed runs left behind (atomic writes that never finished).

    A live writer's temporary files are locked and stay (see ``mnc.io.atomic``).
    """
    for name in (*RESULT_FILES, MANIFEST):
        remove_stale_parts(folder / name)


def record(folder: Path, config: dict[str, Any], ir: IR, spec_files: list[Path],
           world_size: int) -> None:
    """Write the manifest, the resolved config, the IR, the spec copies and run.json."""
    sources = [(f"spec/{number:02d}-{file.name}", file)
               for number, file in enumerate(spec_files) if file.is_file()]
    write_manifest(folder, [name for name, _ in sources])
    write_config(folder, config)
    write_text_atomic(folder / "ir.json", ir_to_json(ir))
    copies = []
    for name, file in sources:
        write_text_atomic(folder / name, read_bounded_text(file, MAX_FILE_BYTES, "spec file"))
        copies.append(name)
    info = {"content_hash": ir.content_hash, "spec_name": ir.name,
            "spec_files": [str(file) for file in spec_files], "spec_copies": copies,
            "mnc_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "world_size": world_size}
    write_text_atomic(folder / "run.json", strict_json.dumps(info, indent=1) + "\n")


def write_config(folder: Path, config: dict[str, Any]) -> None:
    write_text_atomic(folder / CONFIG, yaml.safe_dump(config, sort_keys=False))


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl from the checkpoint's history (so the two always agree)."""
    write_text_atomic(folder / METRICS,
                      "".join(strict_json.dumps(entry, sort_keys=True) + "\n"
                              for entry in history))


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    file = folder / METRICS if folder.is_dir() else folder
    if not file.exists():
        raise UserFileError(f"{file}: no such metrics log (expected a run folder of mnc train)")
    entries = []
    text = read_bounded_text(file, MAX_METRICS_BYTES, "metrics log (JSON lines)")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = parse_json(line, f"{file}:{number}", "JSON object per line")
        except TextFileError as error:
            raise UserFileError(str(error)) from None
        if not isinstance(entry, dict) or "epoch" not in entry:
            raise UserFileError(f"{file}:{number}: expected an object with an 'epoch' field")
        entries.append(entry)
    return entries
