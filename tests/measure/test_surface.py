"""Surface areas: convex hulls of a population's voxels on the flat map."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.measure import derive_surfaces, load_atlas, measure_surfaces
from mnc.measure.flatmap import FlatMap
from mnc.measure.voxel_model import Atlas
from tests.measure.synthetic import Synthetic


def test_hull_areas_of_synthetic_areas(synthetic: Synthetic) -> None:
    atlas = load_atlas(synthetic.directory)
    result = measure_surfaces(atlas, ["VISp4", "VISp2/3", "VISl4", "VISal5"])
    assert result.values_mm2["VISp4"] == pytest.approx(1.9**2)
    assert result.values_mm2["VISp2/3"] == pytest.approx(1.9**2)  # two voxels per column
    assert result.values_mm2["VISl4"] == pytest.approx(0.5**2)
    assert result.voxels == {"VISp4": 400, "VISp2/3": 800, "VISl4": 36, "VISal5": 36}
    both = measure_surfaces(atlas, ["VISl4"], hemisphere="both")
    assert both.voxels["VISl4"] == 72 and both.values_mm2["VISl4"] > 0.25


def test_unmapped_voxels_are_left_out_and_counted(synthetic: Synthetic) -> None:
    atlas = load_atlas(synthetic.directory)
    lookup = atlas.flatmap.lookup.copy()
    lookup[0, :, :] = np.nan  # the first row of VISp columns leaves the map
    cut = Atlas(atlas.annotation, atlas.tree, FlatMap(lookup), atlas.origin)
    result = measure_surfaces(cut, ["VISp4"])
    assert result.unmapped_voxels["VISp4"] == 20
    assert result.values_mm2["VISp4"] == pytest.approx(1.9 * 1.8)


def test_degenerate_and_layerless_populations(synthetic: Synthetic) -> None:
    atlas = load_atlas(synthetic.directory)
    lookup = atlas.flatmap.lookup.copy()
    lookup[..., 0] = 0.0  # every voxel on one line
    with pytest.raises(UserFileError, match="VISl4 has .* distinct flat-map positions"):
        measure_surfaces(Atlas(atlas.annotation, atlas.tree, FlatMap(lookup)), ["VISl4"])
    with pytest.raises(UserFileError, match="'VISp': surface areas are recorded per area "
                                            "and layer"):
        derive_surfaces(synthetic.directory, ["VISp"])
