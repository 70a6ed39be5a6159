"""Population names as the Allen structure tree spells them: area + layer ("VISp2/3")."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from mnc.measure.structures import StructureTree

DEFAULT_SOURCE_LAYERS = ("4", "2/3", "5")
"""Layers that project between areas in MouseNet; an area given as a source expands to these."""

CORTICAL_LAYERS = ("1", "2/3", "4", "5", "6a", "6b")
_LAYERED = re.compile(r"^(?P<area>[A-Za-z][A-Za-z0-9_-]*?)(?P<layer>1|2/3|4|5|6a|6b)$")


def split_population(name: str) -> tuple[str, str | None]:
    """("VISp2/3") -> ("VISp", "2/3"); a name without a cortical layer -> (name, None)."""
    match = _LAYERED.match(name)
    if match is None:
        return name, None
    return match["area"], match["layer"]


def split_list(text: str) -> list[str]:
    """Comma-separated names from the command line, blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def expand_sources(names: Iterable[str], tree: StructureTree,
                   layers: Sequence[str] = DEFAULT_SOURCE_LAYERS) -> list[str]:
    """Areas become their layers' populations; populations and layerless areas stay.

    "VISp" -> VISp4, VISp2/3, VISp5 when the tree has layers of VISp; "LGNd" stays "LGNd".
    Every name returned is checked against the tree (an unknown one raises with hints).
    """
    expanded: list[str] = []
    for name in names:
        _, layer = split_population(name)
        layered = [f"{name}{each}" for each in layers]
        # an area with layers in the tree expands (every layer must exist); one without any
        # (a thalamic nucleus such as LGNd) is a population itself
        if layer is None and layers and any(tree.has(f"{name}{each}") for each in CORTICAL_LAYERS):
            chosen = layered
        else:
            chosen = [name]
        for population in chosen:
            tree.structure_id(population)
            if population not in expanded:
                expanded.append(population)
    return expanded
