"""Interareal strengths and widths (``interareal.projections``) from the voxel connectome.

For a projection SOURCE->TARGET (populations such as VISp2/3 -> VISl4):

* strength: the mean, over TARGET's voxels, of the total voxel-model weight each receives
  from SOURCE's voxels; normalised so that each target's listed sources sum to 1 (the spec
  reads strengths as shares of the target's extrinsic in-degree);
* sigma_mm: the mean, over TARGET's voxels whose profile passes the checks of
  ``mnc.measure.profile``, of the width of the profile on the flat map.

Both hemispheres' voxels are restricted to one hemisphere (ipsilateral projections).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mnc.errors import UserFileError
from mnc.measure.cache import ResultCache, cache_key
from mnc.measure.profile import ProfileResults, ProfileSettings, Status, analyse_profiles
from mnc.measure.voxel_model import Atlas, VoxelConnectivity


@dataclass(frozen=True)
class ProjectionMeasurement:
    """One derived projection with the counts that say how much data it rests on."""

    source: str
    target: str
    mean_total_weight: float
    strength: float
    sigma_mm: float | None
    source_voxels: int
    unmapped_source_voxels: int
    results: ProfileResults = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.source}->{self.target}"

    @property
    def target_voxels(self) -> int:
        return int(len(self.results.status))

    def count(self, status: Status) -> int:
        return self.results.count(status)

    def summary(self) -> dict[str, object]:
        return {
            "projection": self.key, "strength": self.strength, "sigma_mm": self.sigma_mm,
            "mean_total_weight": self.mean_total_weight,
            "target_voxels": self.target_voxels,
            "used": self.count(Status.ACCEPTED),
            "rejected_multimodal": self.count(Status.MULTIMODAL),
            "rejected_border": self.count(Status.BORDER),
            "empty": self.count(Status.EMPTY),
            "fit_failed": self.count(Status.FIT_FAILED),
            "source_voxels": self.source_voxels,
            "unmapped_source_voxels": self.unmapped_source_voxels,
        }


@dataclass(frozen=True)
class ConnectomeMeasurement:
    projections: list[ProjectionMeasurement]
    settings: ProfileSettings
    hemisphere: str
    origin: str
    cache_hits: int = 0


def measure_connectome(connectivity: VoxelConnectivity, atlas: Atlas, sources: Sequence[str],
                       targets: Sequence[str], settings: ProfileSettings | None = None,
                       hemisphere: str = "right", cache: ResultCache | None = None,
                       progress: bool | None = None) -> ConnectomeMeasurement:
    """Measure every SOURCE->TARGET pair; sources and targets are population acronyms.

    ``progress``: show bars (``None``: on a terminal or in a notebook, lines in a log)."""
    from mnc import progress as bars

    settings = settings or ProfileSettings()
    cache = cache or ResultCache(None)
    pairs = [(source, target) for target in targets for source in sources]
    measured: list[tuple[str, str, float, float | None, int, int, ProfileResults]] = []
    selected_sources = {source: _source_selection(connectivity, atlas, source, hemisphere)
                        for source in sources}
    selected_targets = {target: _target_selection(connectivity, atlas, target, hemisphere)
                        for target in targets}
    for source, target in bars.bar(pairs, desc="projections", unit="projection",
                                   show=progress):
        rows, positions, unmapped = selected_sources[source]
        columns = selected_targets[target]
        weights = connectivity.block(rows, columns)
        key = cache_key({"settings": settings.key()}, positions, weights)
        stored = cache.load(key)
        if stored is not None:
            results = ProfileResults(**stored)
        else:
            results = analyse_profiles(positions, weights, settings, progress=bool(progress),
                                       description=f"{source}->{target}")
            cache.save(key, results.as_arrays())
        accepted = results.sigma_mm[results.status == Status.ACCEPTED]
        sigma = float(np.mean(accepted)) if len(accepted) else None
        measured.append((source, target, float(np.mean(results.totals)), sigma, len(rows),
                         unmapped, results))
    sums: dict[str, float] = {}
    for _, target, total, *_ in measured:
        sums[target] = sums.get(target, 0.0) + total
    projections = [
        ProjectionMeasurement(source, target, total,
                              total / sums[target] if sums[target] > 0 else 0.0, sigma,
                              n_rows, unmapped, results)
        for source, target, total, sigma, n_rows, unmapped, results in measured
    ]
    return ConnectomeMeasurement(projections, settings, hemisphere, connectivity.origin,
                                 cache.hits)


def _source_selection(connectivity: VoxelConnectivity, atlas: Atlas, population: str,
                      hemisphere: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of the model for a source population, their flat positions, and how many of the
    population's voxels had no flat-map position (and were left out)."""
    voxels = connectivity.source_voxels
    rows = _voxels_of(connectivity, atlas, voxels, population, hemisphere, "source")
    positions = atlas.flatmap.positions(voxels[rows])
    mapped = np.all(np.isfinite(positions), axis=1)
    if not mapped.any():
        raise UserFileError(f"{atlas.flatmap.origin}: none of the {len(rows)} voxels of "
                            f"{population} has a flat-map position")
    return rows[mapped], positions[mapped], int(np.count_nonzero(~mapped))


def _target_selection(connectivity: VoxelConnectivity, atlas: Atlas, population: str,
                      hemisphere: str) -> np.ndarray:
    return _voxels_of(connectivity, atlas, connectivity.target_voxels, population, hemisphere,
                      "target")


def _voxels_of(connectivity: VoxelConnectivity, atlas: Atlas, voxels: np.ndarray,
               population: str, hemisphere: str, side: str) -> np.ndarray:
    """Indices of the voxels (rows for sources, columns for targets) in a population."""
    chosen = atlas.in_structure(voxels, population) & atlas.in_hemisphere(voxels, hemisphere)
    indices = np.flatnonzero(chosen)
    if len(indices) == 0:
        raise UserFileError(f"{connectivity.origin}: the model has no {side} voxels in "
                            f"{population} ({hemisphere} hemisphere); check the {side} voxel "
                            "list or mask and the annotation")
    return indices
