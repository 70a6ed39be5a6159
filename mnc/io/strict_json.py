"""JSON that strict parsers accept: NaN and infinity become null, numpy values plain Python.

``json.dumps`` writes ``NaN``/``Infinity`` by default, which is not JSON (RFC 8259) and is
rejected by strict readers (JavaScript's ``JSON.parse``, ``jq``, many databases).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def plain(value: Any) -> Any:
    """``value`` with non-finite floats as None, numpy scalars/arrays and paths as Python."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, PurePath):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return plain(tolist())
    return str(value)


def dumps(value: Any, **options: Any) -> str:
    """Strict JSON text of ``value`` (see ``plain``)."""
    return json.dumps(plain(value), allow_nan=False, **options)
