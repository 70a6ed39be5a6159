"""JSON merge patch (RFC 7386), the rule by which a spec overrides the specs it extends.

Mappings merge key by key, ``null`` deletes a key, anything else (lists, scalars) replaces.
"""

from __future__ import annotations

from typing import Any


def merge_patch(base: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
