"""Surface areas of populations (``surface_area_mm2``): convex hulls on the flat map.

A population's surface area is the area of the convex hull of its voxels' flat-map
positions (voxel centres), as in MouseNet. The hull spans centres, so it leaves out the
half-voxel rim around them; on a 100 um map that is about 0.05 mm times the perimeter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnc.errors import UserFileError
from mnc.measure.voxel_model import Atlas


@dataclass(frozen=True)
class SurfaceMeasurement:
    values_mm2: dict[str, float]
    voxels: dict[str, int]
    unmapped_voxels: dict[str, int]
    hemisphere: str
    origin: str


def measure_surfaces(atlas: Atlas, populations: Sequence[str],
                     hemisphere: str = "right") -> SurfaceMeasurement:
    from scipy.spatial import ConvexHull, QhullError

    values: dict[str, float] = {}
    counts: dict[str, int] = {}
    unmapped: dict[str, int] = {}
    for population in populations:
        voxels = atlas.voxels_of(population, hemisphere)
        if len(voxels) == 0:
            raise UserFileError(f"{atlas.origin}: no voxels annotated as {population} in the "
                                f"{hemisphere} hemisphere")
        positions = atlas.flatmap.positions(voxels)
        mapped = np.all(np.isfinite(positions), axis=1)
        points = np.unique(positions[mapped], axis=0)
        try:
            hull = ConvexHull(points)
        except (QhullError, ValueError):
            raise UserFileError(
                f"{atlas.flatmap.origin}: {population} has {len(points)} distinct flat-map "
                "positions; a surface area needs at least 3 that are not on one line") from None
        values[population] = float(hull.volume)  # in 2-D, "volume" is the enclosed area
        counts[population] = int(len(voxels))
        unmapped[population] = int(np.count_nonzero(~mapped))
    return SurfaceMeasurement(values, counts, unmapped, hemisphere, atlas.origin)
