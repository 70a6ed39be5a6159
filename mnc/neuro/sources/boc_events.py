"""A Brain Observatory session's detected calcium events (``<id>_events.npz``), read safely.

The Allen Brain Observatory distributes, next to each session file, the events its L0
detection found in every cell's dF/F trace: an ``.npz`` whose array ``ev`` is
(cells, frames) of event magnitudes (0 where no event), one row per dF/F trace and one
column per dF/F frame. de Vries et al. 2020 computed sparseness on these events.

The file is a cache file like the session files and is read as warily: it is opened
without following a link and without waiting on a FIFO, must be a regular file within the
memory limit, the ``ev`` member's declared size is checked against the limit from its
header before anything is allocated, nothing is unpickled, and the magnitudes must be
finite and non-negative with one row per cell and one column per frame.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from mnc.errors import UserFileError
from mnc.neuro.sources.boc_session import LIMIT_ADVICE, SUMS_BYTES_PER_SAMPLE

EVENTS_MEMBER = "ev"
"""The array allensdk's ``get_ophys_experiment_events`` returns from the file."""


def read_events_file(path: Path, cells: int, frames: int, max_bytes: int) -> np.ndarray:
    """(cells, frames) event magnitudes of one session, checked as the module docstring says."""
    from mnc.neuro.sources.recording_files import npy_member_header

    source = str(path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(_file_bytes(path, max_bytes)))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        raise UserFileError(f"{source}: not an .npz archive ({error})") from None
    with archive:
        names = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        if EVENTS_MEMBER not in names:
            raise UserFileError(f"{source}: no array {EVENTS_MEMBER!r}; expected the "
                                "(cells, frames) event magnitudes of a Brain Observatory "
                                f"events file (found {', '.join(sorted(names)) or 'none'})")
        info = names[EVENTS_MEMBER]
        try:
            with archive.open(info) as stream:
                shape, dtype = npy_member_header(stream, EVENTS_MEMBER, source)
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if dtype.hasobject or dtype.kind not in "iuf" or len(shape) != 2:
                raise UserFileError(f"{source}: array {EVENTS_MEMBER!r}: expected a "
                                    f"(cells, frames) array of numbers, got {dtype} with "
                                    f"shape {shape}")
            if shape != (cells, frames):
                raise UserFileError(f"{source}: array {EVENTS_MEMBER!r}: shape {shape}; "
                                    f"expected ({cells}, {frames}), one row per dF/F trace "
                                    "and one column per frame of the session file")
            needed = int(np.prod(shape, dtype=object)) * SUMS_BYTES_PER_SAMPLE + declared
            if needed > max_bytes:
                raise UserFileError(f"{source}: array {EVENTS_MEMBER!r}: shape {shape} needs "
                                    f"{needed:,} bytes to compute responses; the limit is "
                                    f"{max_bytes:,} bytes ({LIMIT_ADVICE})")
            with archive.open(info) as stream:
                events = np.lib.format.read_array(stream, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError,
                RuntimeError) as error:
            raise UserFileError(f"{source}: array {EVENTS_MEMBER!r} cannot be read (cut short "
                                f"or damaged: {error})") from None
    if not np.isfinite(events).all() or (events < 0).any():
        raise UserFileError(f"{source}: array {EVENTS_MEMBER!r}: expected finite event "
                            "magnitudes >= 0, found NaN, infinite or negative values")
    return events


def _file_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes: a regular file reached without following a link, within the limit."""
    source = str(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserFileError(f"{source}: is a symbolic link; cache files are read only "
                                "where they are, never through a link") from None
        raise UserFileError(f"{source}: cannot be opened ({error.strerror or error})") from None
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise UserFileError(f"{source}: not a regular file; expected a Brain Observatory "
                                "events file (.npz)")
        if status.st_size > max_bytes:
            raise UserFileError(f"{source}: holds {status.st_size:,} bytes; the limit is "
                                f"{max_bytes:,} bytes ({LIMIT_ADVICE})")
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UserFileError(f"{source}: holds more than {max_bytes:,} bytes ({LIMIT_ADVICE})")
    return data
