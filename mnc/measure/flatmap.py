"""Cortical flat map: where each 100 um CCF voxel lies on the unfolded cortex, in mm.

Widths and surface areas are measured along the cortical sheet, not through the 3-D volume,
so every voxel is first placed on a 2-D map. The map is a lookup volume with the annotation's
shape plus a last axis of 2 (x, y in mm), NaN for voxels off the map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnc.errors import UserFileError


@dataclass(frozen=True)
class FlatMap:
    """Flat-map coordinates (mm) of every voxel of the CCF volume; NaN off the cortex."""

    lookup: np.ndarray
    origin: str = "<flat map>"

    @classmethod
    def from_file(cls, path: str | Path, volume_shape: tuple[int, ...]) -> FlatMap:
        path = Path(path)
        try:
            lookup = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise UserFileError(f"{path}: cannot read the flat map ({error})") from None
        return cls.checked(lookup, volume_shape, str(path))

    @classmethod
    def checked(cls, lookup: np.ndarray, volume_shape: tuple[int, ...],
                origin: str = "<flat map>") -> FlatMap:
        expected = (*volume_shape, 2)
        if lookup.shape != expected:
            raise UserFileError(f"{origin}: flat map has shape {lookup.shape}, expected "
                                f"{expected} (annotation shape + 2 coordinates in mm)")
        if not np.issubdtype(lookup.dtype, np.floating):
            raise UserFileError(f"{origin}: flat map must hold floats (mm, NaN off the "
                                f"cortex), not {lookup.dtype}")
        return cls(np.asarray(lookup, dtype=np.float64), origin)

    def positions(self, voxels: np.ndarray) -> np.ndarray:
        """(N, 3) voxel indices -> (N, 2) positions in mm (rows of NaN for unmapped voxels)."""
        voxels = np.asarray(voxels, dtype=np.int64)
        return self.lookup[voxels[:, 0], voxels[:, 1], voxels[:, 2]]


def median_spacing_mm(positions: np.ndarray) -> float:
    """Typical distance between neighbouring distinct positions: the map's voxel pitch."""
    from scipy.spatial import cKDTree

    distinct = np.unique(positions, axis=0)
    if len(distinct) < 2:
        return 0.0
    distances, _ = cKDTree(distinct).query(distinct, k=2)
    return float(np.median(distances[:, 1]))
