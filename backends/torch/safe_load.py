"""``torch.load`` for files a user hands us: tensors and plain containers only, plain errors.

torch's refusal of a pickled object suggests loading the file with ``weights_only=False``,
which would run the file's code; the messages here say what the file holds instead and never
pass that advice on.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from mnc.errors import UserFileError

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ADVICE = ("weights_only", "safe_globals", "trust")


def load_tensors(path: str | Path, what: str) -> Any:
    """The contents of a torch file; UserFileError naming ``path`` if it cannot be read safely."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UserFileError(f"{path}: not a readable {what}: {unpickling_reason(error)}") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as error:
        raise UserFileError(f"{path}: not a readable {what} ({reason_of(error)})") from None


def unpickling_reason(error: BaseException) -> str:
    found = _GLOBAL.search(str(error))
    if found:
        return (f"it holds the Python object {found.group(1)} (objects other than tensors and "
                f"plain containers are never loaded: that would run code from the file)")
    return "not a torch file, or it holds objects other than tensors and plain containers"


def reason_of(error: BaseException) -> str:
    """The first line of an error that gives no advice to load unsafely, without escapes."""
    for line in _ESCAPE.sub("", str(error)).splitlines():
        line = line.strip()
        if line and not any(word in line for word in _ADVICE):
            return f"{type(error).__name__}: {line[:200]}"
    return type(error).__name__
