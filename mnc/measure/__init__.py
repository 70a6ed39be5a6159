"""Measurements for a spec, derived from the voxel-scale mouse connectome (Knox et al. 2019).

Pipeline, for ``mnc measure connectome`` and ``mnc measure surface``::

    model directory --load_atlas--> Atlas (annotation, structure tree, flat map)
                    --load_connectivity--> VoxelConnectivity (weights @ nodes, voxel lists)
    measure_connectome(...) -> per projection: strength, sigma_mm, voxel counts
    measure_surfaces(...)   -> per population: convex-hull area on the flat map (mm^2)
    interareal_fragment / surface_fragment -> a partial spec to ``extends:``

Example (from Python)::

    >>> from mnc.measure import derive_interareal
    >>> text, measurement = derive_interareal("voxel_model/", ["VISp"], ["VISl4", "VISal4"])
    >>> print(text)                                                   # doctest: +SKIP
    interareal:
      source: "projections listed in this fragment derived by mnc measure connectome ..."
      projections:
        "VISp4->VISl4": {strength: 0.21, sigma_mm: 0.31}  # 140/163 used ...

Only numpy, scipy and scikit-learn are needed; allensdk is optional (it can produce the
files, see the README section "Measuring from the voxel connectome").
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from mnc.measure.cache import ResultCache, default_cache_dir
from mnc.measure.connectome import ConnectomeMeasurement, ProjectionMeasurement, measure_connectome
from mnc.measure.fragment import interareal_fragment, surface_fragment
from mnc.measure.names import DEFAULT_SOURCE_LAYERS, expand_sources, split_population
from mnc.measure.profile import ProfileSettings, Status
from mnc.measure.surface import SurfaceMeasurement, measure_surfaces
from mnc.measure.voxel_model import Atlas, VoxelConnectivity, load_atlas, load_connectivity

__all__ = [
    "Atlas", "ConnectomeMeasurement", "ProfileSettings", "ProjectionMeasurement", "Status",
    "SurfaceMeasurement", "VoxelConnectivity", "derive_interareal", "derive_surfaces",
    "load_atlas", "load_connectivity", "measure_connectome", "measure_surfaces",
    "interareal_fragment", "surface_fragment", "expand_sources",
]


def derive_interareal(directory: str | Path, sources: Sequence[str], targets: Sequence[str],
                      *, source_layers: Sequence[str] = DEFAULT_SOURCE_LAYERS,
                      settings: ProfileSettings | None = None, hemisphere: str = "right",
                      flatmap: str | Path | None = None,
                      cache_dir: str | Path | None = None, use_cache: bool = True,
                      progress: bool | None = None, date: str | None = None
                      ) -> tuple[str, ConnectomeMeasurement]:
    """Load the model in ``directory``, measure SOURCE->TARGET projections, return the
    fragment text and the measurement (areas among ``sources`` expand to ``source_layers``).
    ``progress=None`` shows bars on a terminal or in a notebook."""
    atlas = load_atlas(directory, flatmap)
    cache_root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) \
        if use_cache else None
    connectivity = load_connectivity(directory, atlas, cache_root)
    source_populations = expand_sources(sources, atlas.tree, source_layers)
    target_populations = expand_sources(targets, atlas.tree, ())
    measurement = measure_connectome(connectivity, atlas, source_populations,
                                     target_populations, settings, hemisphere,
                                     ResultCache(cache_root), progress)
    text = interareal_fragment(measurement, str(directory), date or _today())
    return text, measurement


def derive_surfaces(directory: str | Path, populations: Sequence[str], *,
                    hemisphere: str = "right", flatmap: str | Path | None = None,
                    date: str | None = None) -> tuple[str, SurfaceMeasurement]:
    """Load the atlas in ``directory`` and measure each population's flat-map surface area."""
    from mnc.errors import UserFileError

    atlas = load_atlas(directory, flatmap)
    for population in populations:
        atlas.tree.structure_id(population)
        if split_population(population)[1] is None:
            raise UserFileError(f"population {population!r}: surface areas are recorded per "
                                "area and layer (e.g. VISp4, VISp2/3); give a layer")
    measurement = measure_surfaces(atlas, populations, hemisphere)
    text = surface_fragment(measurement, str(directory), atlas.flatmap.origin,
                            date or _today())
    return text, measurement


def _today() -> str:
    return datetime.date.today().isoformat()
