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


# Where a file must give back exactly what was written (a cache), the non-finite numbers that
# strict JSON writes as null are listed beside the data by path, and put back on reading.
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def non_finite_marks(value: Any, path: tuple[str | int, ...] = ()) -> list[list[Any]]:
    """``[*path, "nan" | "inf" | "-inf"]`` for every non-finite float in ``value`` (mappings
    with string keys and lists only)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [[*path, "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")]]
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return []
    return [mark for key, item in items for mark in non_finite_marks(item, (*path, key))]


def restore_non_finite(value: Any, marks: Any) -> str | None:
    """Put the numbers ``non_finite_marks`` listed back where ``plain`` wrote null; what
    does not fit (a path that leads nowhere or to something else than null), or None."""
    if not isinstance(marks, list):
        return "the list of non-finite numbers is not a list"
    for mark in marks:
        if not isinstance(mark, list) or len(mark) < 2 or mark[-1] not in _NON_FINITE:
            return f"{mark!r} is not a path and nan, inf or -inf"
        container = value
        for step in mark[:-2]:
            container = _step(container, step)
            if container is None:
                return f"{mark!r} leads nowhere"
        last = mark[-2]
        if _step(container, last, leaf=True) is not _NULL:
            return f"{mark!r} does not point at a null"
        container[last] = _NON_FINITE[mark[-1]]
    return None


_NULL = object()


def _step(container: Any, key: Any, leaf: bool = False) -> Any:
    if isinstance(container, dict) and isinstance(key, str) and key in container:
        found = container[key]
    elif (isinstance(container, list) and isinstance(key, int) and not isinstance(key, bool)
          and 0 <= key < len(container)):
        found = container[key]
    else:
        return None
    if leaf:
        return _NULL if found is None else found
    return found if isinstance(found, dict | list) else None
