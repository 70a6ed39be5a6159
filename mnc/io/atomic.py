"""Atomic file writes: a reader sees the old file or the complete new one, never a torn file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mnc.errors import UserFileError
from mnc.io.textfile import file_kind

# Temporary files a writer makes before it holds one (a cleaner may take each new one in the
# instant before the writer locks it; see _locked_part).
PART_ATTEMPTS = 100
# Bytes of the destination's name kept in a temporary name, so that name plus process id and
# random part stays within the 255 bytes most file systems allow.
PART_NAME_BYTES = 200


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str], follow_links: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success it replaces ``destination``.

    The temporary file lives in the same folder so the final ``os.replace`` is atomic on POSIX.
    On any exception (including KeyboardInterrupt) the temporary file is removed and the old
    destination, if any, is left untouched. The writer holds a write lock on the
    temporary file until it is in place, which is how other writers tell a live writer's file
    from a dead one's (process ids say nothing across PID namespaces). An OSError about the
    file (read-only folder, full disk, name too long) becomes one UserFileError naming it.

    ``follow_links=False`` (cache entries, in folders others may write to): whatever has the
    name (a symbolic link, a FIFO, a device) is replaced, never written through or into.
    """
    final = Path(destination)
    if os.path.isdir(final) and (follow_links or not os.path.islink(final)):
        raise UserFileError(f"{final}: is a folder; expected the name of a file to write")
    kind = _special_kind(final) if follow_links else None
    if kind is not None:
        yield from _written_in_place(final, kind)
        return
    if follow_links and os.path.islink(final):  # replace the file the link names
        final = Path(os.path.realpath(final))
    yield from _written_beside(final, follow_links)


def _written_in_place(final: Path, kind: str) -> Iterator[Path]:
    """A device or pipe (/dev/null, /dev/stdout, a FIFO) is written in place: replacing it
    would swap the device for a regular file. A block device is a disk: never written."""
    if kind == "a block device":
        raise UserFileError(f"{final}: is {kind}; expected the name of a file to write")
    try:
        yield final
    except OSError as error:
        raise UserFileError(f"{final}: cannot write ({_reason(error)})") from None


def _written_beside(final: Path, follow_links: bool) -> Iterator[Path]:
    """A locked temporary file beside ``final`` that replaces it once written."""
    temporary: Path | None = None
    handle = -1
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(final)
        handle, temporary = _locked_part(final)
        os.chmod(temporary, _part_mode(final, follow_links))
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
        temporary = None
    except OSError as error:
        _remove(temporary)
        if error.filename is not None and not _about_output(str(error.filename), final):
            raise  # about another file the caller touched while writing
        raise UserFileError(f"{final}: cannot write ({_reason(error)})") from None
    except BaseException:
        _remove(temporary)
        raise
    finally:
        if handle >= 0:
            os.close(handle)


def _locked_part(final: Path) -> tuple[int, Path]:
    """A new temporary file beside ``final``, made and write-locked by this writer.

    Between making a file and locking it a writer holds no lock, so a cleaner in another
    process may take the file for a dead writer's: it then holds the file's read lock (ours
    fails) or has removed the name (ours succeeds on a file nobody can find). Either way this
    writer makes another. Cleaners can thus remove every unlocked part file at once, the
    empty one a writer killed just after making it included."""
    for _ in range(PART_ATTEMPTS):
        handle, name = tempfile.mkstemp(
            prefix=f"{_part_prefix(final)}{os.getpid()}.", suffix=".part", dir=final.parent
        )
        if _lock_part(handle) and _names(name, handle):
            return handle, Path(name)
        os.close(handle)  # the cleaner that took it removes it
    raise OSError(errno.EAGAIN, f"no temporary file stayed ours in {PART_ATTEMPTS} tries",
                  str(final))


def _names(path: str, descriptor: int) -> bool:
    """Whether ``path`` still names the file open as ``descriptor``."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _part_mode(final: Path, follow_links: bool) -> int:
    """mkstemp creates 0600; the file gets the mode a plain open() would (or the old
    file's)."""
    if follow_links and os.path.exists(final):
        return final.stat().st_mode & 0o777
    return 0o666 & ~_current_umask()


def _special_kind(final: Path) -> str | None:
    """What ``final`` is if it exists and is neither a regular file nor a folder, else None."""
    try:
        mode = os.stat(final).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return file_kind(mode)


def _remove(temporary: Path | None) -> None:
    if temporary is not None:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _about_output(name: str, final: Path) -> bool:
    """Whether an error's file is the output, its temporary file or a folder above them."""
    path = Path(name)
    return path == final or path.name.startswith(_part_prefix(final)) or path in final.parents


def _reason(error: OSError) -> str:
    if error.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return error.strerror or str(error)


def _part_prefix(final: Path) -> str:
    name = final.name.encode("utf-8", "surrogateescape")[:PART_NAME_BYTES]
    return f".{name.decode('utf-8', 'ignore')}."


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_parts(final: Path) -> None:
    """Delete temporary files left beside ``final`` by writers that were killed (kill -9).

    A live writer holds an exclusive lock on its temporary file, so a part file whose lock can
    be taken belongs to a writer that is gone (the kernel drops the locks of dead processes,
    whatever PID namespace they ran in) and can never be completed. A writer that has made its
    file but not locked it yet makes another when it finds the file taken (``_locked_part``).
    """
    for candidate in final.parent.glob(f"{glob_escape(_part_prefix(final))}*.part"):
        with contextlib.suppress(OSError):
            _remove_if_stale(candidate)


def _remove_if_stale(candidate: Path) -> None:
    descriptor = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return
        if not _lock_part(descriptor, shared=True):
            return  # a live writer holds it
        candidate.unlink()
    finally:
        os.close(descriptor)


def _lock_part(descriptor: int, shared: bool = False) -> bool:
    """Lock a whole part file without waiting; False if a conflicting lock is held.

    The writer takes the exclusive (write) lock; a cleaner takes a shared (read) lock, which
    a read-only descriptor can hold and which conflicts only with a writer's.

    An open-file-description lock (F_OFD_SETLK): it conflicts with every other open of the file,
    in this process too, but not with the ``flock`` that HDF5 and netCDF take on the files they
    write, so those writers can run inside ``atomic_path``.
    """
    kind = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
    request = struct.pack("hhqqixxxx", kind, os.SEEK_SET, 0, 0, 0)
    try:
        fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, request)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def glob_escape(text: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)


@contextlib.contextmanager
def atomic_open(
    destination: str | os.PathLike[str],
    mode: str = "w",
    encoding: str | None = None,
    follow_links: bool = True,
) -> Iterator[IO]:
    """Open a file for writing that appears at ``destination`` only once it is complete."""
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with (
        atomic_path(destination, follow_links) as temporary,
        open(temporary, mode, encoding=encoding) as stream,
    ):
        yield stream


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> None:
    with atomic_open(destination, "w") as stream:
        stream.write(text)


def write_bytes_atomic(destination: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(destination, "wb") as stream:
        stream.write(data)
