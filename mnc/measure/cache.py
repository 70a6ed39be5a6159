"""Cache of per-target-voxel results, so a rerun (other thresholds aside) takes seconds.

Entries are .npz files named by a hash of everything the result depends on: the weights of
the block analysed, the source voxels' flat-map positions, the settings and a format version.
Keying by content rather than by file names means a new model release can never be served
stale results. The folder is trusted like any other (``mnc.io.cache_entries``): links, FIFOs
and other users' files are misses, entries are read within the memory limit and never
unpickled, and written by replacing their name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from mnc.analysis.limits import current_limits
from mnc.io.cache_entries import cache_open, entry_exists, read_entry
from mnc.io.textfile import TextFileError

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mnc/measure`` (``~/.cache/mnc/measure`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnc" / "measure"


def cache_key(metadata: dict[str, object], *arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": FORMAT_VERSION, **metadata}, sort_keys=True,
                             default=str).encode())
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(str((contiguous.shape, contiguous.dtype.str)).encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()[:32]


class ResultCache:
    """Load and store dictionaries of arrays by key; a ``None`` directory disables caching."""

    def __init__(self, directory: str | Path | None):
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.npz"
        if not entry_exists(path):
            return None
        try:
            raw = read_entry(path, current_limits().max_memory_bytes)
            with np.load(io.BytesIO(raw), allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (TextFileError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # unusable: recompute and replace
        self.hits += 1
        return arrays

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.directory is None:
            return
        with cache_open(self.directory, self.directory / f"{key}.npz") as stream:
            # numpy's stubs read ** as possibly naming allow_pickle; our keys never do
            np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]
