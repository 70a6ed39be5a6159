"""Entries of caches in folders other users may write to (``--cache-dir``, shared caches).

Nothing in such a folder is trusted: an entry is read only if it is a regular file of the
current user's, reached without following a link and without waiting on a FIFO, and at most
a given size; it is written by replacing its name (a planted link or FIFO is replaced, never
written through) into subfolders that must be real folders of the current user. A caller
turns a ``TextFileError`` from reading into a cache miss.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mnc.errors import UserFileError
from mnc.io.atomic import atomic_open
from mnc.io.textfile import TextFileError, file_kind
from mnc.text import shown


def _user() -> int:
    return os.getuid()


def read_entry(path: Path, limit: int) -> bytes:
    """The bytes of a cache entry: a regular file of this user's, reached without following a
    link and without waiting on a FIFO, at most ``limit`` bytes."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise TextFileError(
                str(path), "is a symbolic link, which a cache never follows"
            ) from None
        raise TextFileError(str(path), error.strerror or str(error)) from None
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise TextFileError(str(path), f"is {file_kind(status.st_mode)}, not a cache file")
        if status.st_uid != _user():
            raise TextFileError(
                str(path),
                f"owned by another user (uid {status.st_uid}), whose entries are not trusted",
            )
        if status.st_size > limit:
            raise TextFileError(str(path), f"holds more than {limit:,} bytes")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise TextFileError(str(path), f"holds more than {limit:,} bytes")
    return data


def entry_exists(path: Path) -> bool:
    """Whether anything (a file, a link, a FIFO) has the entry's name: it is then read, and
    anything unusable is a miss with a warning."""
    return os.path.lexists(path)


def _private_folder(root: Path, folder: Path) -> None:
    """Make ``folder`` (inside ``root``) and every folder between, refusing any that is a
    link or belongs to another user: an entry must not land outside the cache."""
    root = Path(root)
    relative = folder.relative_to(root)
    current = root
    current.mkdir(parents=True, exist_ok=True)
    for part in relative.parts:
        current = current / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(current, 0o700)
        status = os.lstat(current)
        if stat.S_ISLNK(status.st_mode):
            raise UserFileError(
                f"{shown(current)}: is a symbolic link inside the cache; a "
                "cache never writes through links (remove it)"
            )
        if not stat.S_ISDIR(status.st_mode):
            raise UserFileError(
                f"{shown(current)}: is {file_kind(status.st_mode)}; expected "
                "a cache folder (remove it)"
            )
        if status.st_uid != _user():
            raise UserFileError(
                f"{shown(current)}: cache folder owned by another user (uid "
                f"{status.st_uid}); use a --cache-dir of your own"
            )


@contextlib.contextmanager
def cache_open(root: Path, path: Path, mode: str = "wb") -> Iterator[IO]:
    """Write a cache entry atomically: its folders made private, and whatever has its name
    (a link, a FIFO) replaced rather than written through."""
    _private_folder(Path(root), path.parent)
    with atomic_open(path, mode, follow_links=False) as stream:
        yield stream


def write_cache_text(root: Path, path: Path, text: str) -> None:
    with cache_open(root, path, "w") as stream:
        stream.write(text)
