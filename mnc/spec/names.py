"""Population names of a spec: which exist, which belong to a removed area, which are unknown.

A population is an area plus a layer ("VISp2/3") or a non-laminar area alone ("LGNd"); the
image is the population "input". Measurement tables may hold areas that the model leaves out
(a variant that removes an area keeps the base's tables): names in those areas are *removed*,
and anything that refers to them is pruned. Any other name is *unknown*: a mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mnc.spec.models import Spec

INPUT = "input"


class NameStatus(Enum):
    PRESENT = "present"
    REMOVED = "removed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PopulationName:
    name: str
    area: str
    layer: str | None


class PopulationCatalog:
    """Every population the spec models, in the order areas and layers are listed."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.layers = list(spec.layers.names)
        self.populations: dict[str, PopulationName] = {INPUT: PopulationName(INPUT, INPUT, None)}
        for area, region in spec.areas.regions.items():
            for name in self._names_of(area, region.laminar):
                self.populations[name.name] = name
        measured_areas = set(spec.neurons.counts) | set(spec.surface_area_mm2.values)
        self.removed_areas = measured_areas - set(spec.areas.regions)

    def _names_of(self, area: str, laminar: bool) -> list[PopulationName]:
        if not laminar:
            return [PopulationName(area, area, None)]
        return [PopulationName(f"{area}{layer}", area, layer) for layer in self.layers]

    def removed_area_of(self, name: str) -> str | None:
        """The removed area a population name belongs to, if any."""
        if name in self.populations:
            return None
        for area in sorted(self.removed_areas, key=len, reverse=True):
            if name == area or (name.startswith(area) and name[len(area) :] in self.layers):
                return area
        return None

    def status(self, name: str) -> NameStatus:
        if name in self.populations:
            return NameStatus.PRESENT
        if self.removed_area_of(name) is not None:
            return NameStatus.REMOVED
        return NameStatus.UNKNOWN

    def names(self) -> list[str]:
        return list(self.populations)


def split_projection_key(key: str) -> tuple[str, str]:
    source, target = key.split("->", 1)
    return source, target
