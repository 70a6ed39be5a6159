"""``torch.load`` for files a user hands us: tensors and plain containers only, plain errors.

Before torch reads anything, the file's zip directory must show an archive that unpacks to
less than the memory limit (``mnc.io.torch_archive``): torch allocates what entries declare.

torch's refusal of a pickled object suggests loading the file with ``weights_only=False``,
which would run the file's code; the messages here say what the file holds instead and never
pass that advice on.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from mnc.errors import UserFileError
from mnc.io.torch_archive import torch_archive_problem

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ADVICE = ("weights_only", "safe_globals", "trust")


def load_tensors(path: str | Path, what: str) -> Any:
    """The contents of a torch file; UserFileError naming ``path`` if it cannot be read safely,
    SizeLimitError if it would unpack to more than the memory limit."""
    problem = torch_archive_problem(path)
    if problem is not None:
        found = pickled_global(path)
        if found is not None:
            raise UserFileError(f"{path}: not a readable {what}: {_object_reason(found)}")
        raise UserFileError(f"{path}: not a readable {what} ({problem})")
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
        return _object_reason(found.group(1))
    return "not a torch file, or it holds objects other than tensors and plain containers"


def _object_reason(name: str) -> str:
    return (f"it holds the Python object {name} (objects other than tensors and plain "
            f"containers are never loaded: that would run code from the file)")


def pickled_global(path: str | Path) -> str | None:
    """The first Python object a bare pickle file names (``builtins.print``), found by reading
    its opcodes without running any; None if it names none or is no pickle."""
    strings: list[str] = []
    try:
        with open(path, "rb") as stream:
            for opcode, argument, _ in pickletools.genops(stream):
                if opcode.name == "GLOBAL" and isinstance(argument, str):
                    return argument.replace(" ", ".", 1)
                if opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    return f"{strings[-2]}.{strings[-1]}"
                if isinstance(argument, str):
                    strings.append(argument)
    except Exception:  # noqa: BLE001 - any malformed stream simply names nothing
        return None
    return None


def reason_of(error: BaseException) -> str:
    """The first line of an error that gives no advice to load unsafely, without escapes."""
    for line in _ESCAPE.sub("", str(error)).splitlines():
        line = line.strip()
        if line and not any(word in line for word in _ADVICE):
            return f"{type(error).__name__}: {line[:200]}"
    return type(error).__name__
