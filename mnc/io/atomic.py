"""Atomic file writes: a reader sees the old file or the complete new one, never a torn file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success it replaces ``destination``.

    The temporary file lives in the same folder so the final ``os.replace`` is atomic on POSIX.
    On any exception (including KeyboardInterrupt) the temporary file is removed and the old
    destination, if any, is left untouched.
    """
    final = Path(destination)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=".part", dir=final.parent
    )
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def atomic_open(
    destination: str | os.PathLike[str], mode: str = "w", encoding: str | None = None
) -> Iterator[IO]:
    """Open a file for writing that appears at ``destination`` only once it is complete."""
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(destination) as temporary, open(temporary, mode, encoding=encoding) as stream:
        yield stream


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> None:
    with atomic_open(destination, "w") as stream:
        stream.write(text)


def write_bytes_atomic(destination: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(destination, "wb") as stream:
        stream.write(data)
