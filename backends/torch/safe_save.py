"""``torch.save`` through an atomic write, with a write failure as one plain message.

torch's zip writer reports a full disk or a failed write as a ``RuntimeError`` from its C++
core (``PytorchStreamWriter failed writing file``), not as an ``OSError``; the atomic write
leaves the old file intact, and this turns the error into the message any other write gives.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from mnc.io.atomic import atomic_path

_WRITE_FAILURES = ("PytorchStreamWriter", "unexpected pos", "iostream error", "file write")
"""How torch's writer words a failed write (full disk, a device refusing data)."""


def save_torch_file(content: Any, path: str | os.PathLike[str]) -> None:
    """Write ``content`` with ``torch.save`` to ``path`` atomically; a failed write is one
    ``UserFileError`` naming the file, and the previous file stays intact."""
    with atomic_path(Path(path)) as temporary:
        try:
            torch.save(content, temporary)
        except RuntimeError as error:
            if not any(mark in str(error) for mark in _WRITE_FAILURES):
                raise  # not about the file: a bug, which keeps its traceback
            code = errno.ENOSPC if _disk_full(Path(temporary)) else errno.EIO
            raise OSError(code, "write failed: " + os.strerror(code), str(temporary)) from None


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free == 0
    except OSError:
        return False
