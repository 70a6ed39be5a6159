"""Disk-backed scratch arrays that cannot crash the process, and folders that do not linger.

Writing to a memory-mapped file whose blocks the disk cannot supply is a page fault, which the
kernel answers with SIGBUS (no exception, no message). So every scratch array has its blocks
reserved (``posix_fallocate``) before it is mapped: a full disk is then an ``OSError`` turned
into one message naming the folder. A scratch folder holds a lock (``flock``) for as long as
its owner lives; a folder whose lock can be taken belongs to a killed run and is removed by
the next run that makes one in the same place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.text import shown

PREFIX = "mnc-features-"
LOCK_NAME = ".lock"
FRESH_SECONDS = 60.0
"""A folder without its lock is left alone this long: its run may be about to lock it."""


def _reserve(descriptor: int, offset: int, length: int) -> None:
    os.posix_fallocate(descriptor, offset, length)


@contextlib.contextmanager
def scratch_folder(parent: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A new private folder under ``parent`` (the temp folder by default), removed on exit;
    folders of killed runs found there are removed first."""
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    reclaim_stale(base)
    try:
        folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    except OSError as error:
        raise UserFileError(
            f"{shown(base)}: cannot make a scratch folder "
            f"({_reason(error)}); set TMPDIR to a writable folder"
        ) from None
    lock = -1
    try:
        lock = os.open(
            folder / LOCK_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
        )
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield folder
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise UserFileError(_full_message(folder)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if lock >= 0:
            os.close(lock)


def scratch_array(folder: Path, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A writable ``.npy`` memory map in ``folder`` whose disk blocks are already reserved."""
    path = folder / name
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    size = os.path.getsize(path)
    descriptor = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        _reserve(descriptor, 0, size)
    except OSError as error:
        del array
        if error.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate: count free space
            if shutil.disk_usage(folder).free >= size:
                return np.lib.format.open_memmap(path, mode="r+")
        raise UserFileError(
            _full_message(folder, size)
            if error.errno
            in (errno.ENOSPC, errno.EOPNOTSUPP, errno.EINVAL, errno.EFBIG, errno.EDQUOT)
            else f"{shown(folder)}: cannot reserve scratch space ({_reason(error)})"
        ) from None
    finally:
        os.close(descriptor)
    return array


def reclaim_stale(base: Path) -> list[Path]:
    """Remove this user's scratch folders in ``base`` whose owner is gone; the removed ones."""
    removed: list[Path] = []
    try:
        candidates = list(base.glob(f"{PREFIX}*"))
    except OSError:
        return removed
    for candidate in candidates:
        with contextlib.suppress(OSError):
            if _is_stale(candidate):
                shutil.rmtree(candidate)
                removed.append(candidate)
    return removed


def _is_stale(folder: Path) -> bool:
    status = os.lstat(folder)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
        return False
    try:
        lock = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        # A folder is made before its lock: only an old one without a lock is a dead run's.
        return time.time() - status.st_mtime > FRESH_SECONDS
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live run holds it
    finally:
        os.close(lock)
    return True


def _full_message(folder: Path, size: int | None = None) -> str:
    need = f" for {size:,} bytes of features" if size is not None else ""
    return (
        f"{shown(folder.parent)}: no space left{need} in the scratch folder; free space "
        f"there or point TMPDIR at a folder with more room"
    )


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
