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
    if final.is_dir():
        raise IsADirectoryError(f"{final} is a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(final)
    handle, temporary_name = tempfile.mkstemp(
        prefix=f".{final.name}.{os.getpid()}.", suffix=".part", dir=final.parent
    )
    os.close(handle)
    temporary = Path(temporary_name)
    # mkstemp creates 0600; give the file the mode a plain open() would (or the old file's).
    mode = final.stat().st_mode & 0o777 if final.exists() else 0o666 & ~_current_umask()
    os.chmod(temporary, mode)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_parts(final: Path) -> None:
    """Delete temporary files left beside ``final`` by writers that were killed (kill -9).

    Temporary names carry the writer's process id; a part file whose process is gone can
    never be completed, so it is removed. Files of live writers are left alone.
    """
    prefix = f".{final.name}."
    for candidate in final.parent.glob(f"{glob_escape(prefix)}*.part"):
        pid_text = candidate.name[len(prefix):].split(".", 1)[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                candidate.unlink()


def glob_escape(text: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
