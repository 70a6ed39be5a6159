"""Module keys: how population and projection names become names of layers and tensors.

Layer names cannot contain "." and read badly with "/", so every backend writes ``VISp2/3``
as ``VISp2_3`` and the projection ``VISp2/3->VISl4`` as ``VISp2_3__VISl4`` (the weights
contract). The rule is not one-to-one (``VISp2_3`` and ``VISp2/3`` share a key), so the spec
checker and the IR checker refuse networks in which two names would share one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def population_key(name: str) -> str:
    """``VISp2/3`` -> ``VISp2_3``."""
    return name.replace("/", "_")


def projection_key(source: str, target: str) -> str:
    """``("VISp2/3", "VISl4")`` -> ``VISp2_3__VISl4``."""
    return f"{population_key(source)}__{population_key(target)}"


def key_collisions(items: Sequence[Item], key_of: Callable[[Item], str]
                   ) -> list[tuple[int, int, str]]:
    """(earlier index, later index, shared key) for every item whose key an earlier one has."""
    seen: dict[str, int] = {}
    collisions = []
    for index, item in enumerate(items):
        key = key_of(item)
        if key in seen:
            collisions.append((seen[key], index, key))
        else:
            seen[key] = index
    return collisions
