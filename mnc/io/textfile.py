"""Read a user's text file with a bound on the bytes actually read.

A size from ``stat`` says nothing about ``/dev/zero``, a FIFO or standard input, so the bound
is applied while reading: at most ``limit + 1`` bytes are read, and one byte over the limit is
refused. ``-`` reads standard input. Every problem is one ``TextFileError`` naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from typing import Any, BinaryIO

from mnc.errors import UserFileError
from mnc.text import shown

CHUNK_BYTES = 64 * 1024


class TextFileError(UserFileError):
    """A text file that cannot be read: ``path`` and ``reason`` for callers that rephrase."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{shown(path)}: {reason}")


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_regular_file(path: str | os.PathLike[str], what: str = "file") -> os.stat_result:
    """Stat ``path`` (following links) and refuse anything but a regular file, without opening it.

    Opening a FIFO blocks until a writer appears, so files a user did not name directly (the
    bases of ``extends``) are checked with this first.
    """
    shown = str(path)
    try:
        status = os.stat(path)
    except OSError as error:
        raise TextFileError(shown, _os_reason(error)) from None
    if not stat.S_ISREG(status.st_mode):
        raise TextFileError(shown, f"is {file_kind(status.st_mode)}; expected a {what}")
    return status


def read_bounded_bytes(path: str | os.PathLike[str], limit: int, what: str = "file") -> bytes:
    """The bytes of ``path`` (``-``: standard input), refusing more than ``limit`` bytes."""
    shown = str(path)
    if shown == "-":
        return _read_stream(sys.stdin.buffer, limit, "standard input", what)
    try:
        status = os.stat(path)
    except OSError as error:
        raise TextFileError(shown, _os_reason(error)) from None
    if stat.S_ISDIR(status.st_mode):
        raise TextFileError(shown, f"is a directory; expected a {what}")
    try:
        with open(path, "rb", buffering=0) as stream:
            return _read_stream(stream, limit, shown, what)
    except OSError as error:
        raise TextFileError(shown, _os_reason(error)) from None


def read_bounded_text(
    path: str | os.PathLike[str], limit: int, what: str = "text file", allow_nul: bool = False
) -> str:
    """UTF-8 text of ``path``, at most ``limit`` bytes, without NUL bytes unless allowed."""
    raw = read_bounded_bytes(path, limit, what)
    shown = "standard input" if str(path) == "-" else str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextFileError(
            shown, f"not UTF-8 text (byte {error.start}); expected a {what}"
        ) from None
    if not allow_nul and "\x00" in text:
        raise TextFileError(shown, f"contains NUL bytes; expected a {what}")
    return text


def _read_stream(stream: BinaryIO, limit: int, shown: str, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = stream.read(min(CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise TextFileError(shown, f"holds more than {limit:,} bytes; a {what} is at most "
                                   f"{limit:,} bytes")
    return b"".join(chunks)


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "no such file"
    if error.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop?)"
    return f"cannot read ({error.strerror or error})"


def parse_json(text: str, shown: str, what: str = "JSON file") -> Any:
    """``json.loads`` with one message for malformed or absurdly nested text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TextFileError(
            shown, f"not JSON ({error.msg} at line {error.lineno}); expected a {what}"
        ) from None
    except RecursionError:
        raise TextFileError(shown, f"JSON nested too deeply; expected a {what}") from None


def read_json_file(path: str | os.PathLike[str], limit: int, what: str = "JSON file") -> Any:
    """Parsed JSON of ``path``, read with the same bound as ``read_bounded_text``."""
    text = read_bounded_text(path, limit, what)
    return parse_json(text, "standard input" if str(path) == "-" else str(path), what)
