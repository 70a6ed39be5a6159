"""End to end on the synthetic voxel connectome: widths, strengths, rejections, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.measure import (
    ConnectomeMeasurement,
    ProfileSettings,
    Status,
    load_atlas,
    load_connectivity,
    measure_connectome,
)
from mnc.measure.cache import ResultCache
from tests.measure.synthetic import TRUE_SIGMA_MM, Synthetic, layer_id

SOURCES = ["VISp4", "VISp2/3", "VISp5"]
TARGETS = ["VISl4", "VISal4"]


def by_key(measurement: ConnectomeMeasurement) -> dict:
    return {projection.key: projection for projection in measurement.projections}


def test_widths_recovered_within_5_percent(measured: ConnectomeMeasurement) -> None:
    found = by_key(measured)
    for (source, target), sigma in TRUE_SIGMA_MM.items():
        estimate = found[f"{source}->{target}"].sigma_mm
        assert estimate is not None
        assert abs(estimate / sigma - 1) < 0.05, (source, target, estimate, sigma)


def test_strengths_ranked_and_normalised(measured: ConnectomeMeasurement,
                                         synthetic: Synthetic) -> None:
    found = by_key(measured)
    # designed ranking (amplitude x voxels per column x sigma^2)
    visl = sorted(SOURCES, key=lambda s: -found[f"{s}->VISl4"].strength)
    visal = sorted(SOURCES, key=lambda s: -found[f"{s}->VISal4"].strength)
    assert visl == ["VISp2/3", "VISp5", "VISp4"]
    assert visal == ["VISp5", "VISp2/3", "VISp4"]
    for target in TARGETS:
        assert sum(found[f"{s}->{target}"].strength for s in SOURCES) == pytest.approx(1.0)
    # exact value: mean over the right-hemisphere target voxels of the total weight from the
    # right-hemisphere source layer, from the ground-truth matrix
    midline = synthetic.annotation.shape[2] // 2
    source_labels = synthetic.annotation[tuple(synthetic.source_voxels.T)]
    target_labels = synthetic.annotation[tuple(synthetic.target_voxels.T)]
    columns = (target_labels == layer_id("VISl", "4")) & (synthetic.target_voxels[:, 2] >= midline)
    totals = {}
    for source in SOURCES:
        rows = ((source_labels == layer_id("VISp", source[4:]))
                & (synthetic.source_voxels[:, 2] >= midline))
        totals[source] = synthetic.full[np.ix_(rows, columns)].sum(axis=0).mean()
    for source in SOURCES:
        expected = totals[source] / sum(totals.values())
        assert found[f"{source}->VISl4"].strength == pytest.approx(expected, rel=1e-9)
        assert found[f"{source}->VISl4"].mean_total_weight == pytest.approx(totals[source],
                                                                            rel=1e-9)


def test_bad_profiles_rejected_and_only_them(measured: ConnectomeMeasurement,
                                             synthetic: Synthetic) -> None:
    midline = synthetic.annotation.shape[2] // 2
    target_labels = synthetic.annotation[tuple(synthetic.target_voxels.T)]
    columns = np.flatnonzero((target_labels == layer_id("VISl", "4"))
                             & (synthetic.target_voxels[:, 2] >= midline))
    expected = np.array([{"multimodal": Status.MULTIMODAL, "border": Status.BORDER}.get(
        synthetic.bad_kind.get(int(column), ""), Status.ACCEPTED) for column in columns])
    assert np.count_nonzero(expected == Status.MULTIMODAL) == 3
    assert np.count_nonzero(expected == Status.BORDER) == 3
    for source in SOURCES:
        projection = by_key(measured)[f"{source}->VISl4"]
        assert list(projection.results.status) == list(expected), source
        assert projection.summary()["used"] == 30
    for source in SOURCES:
        assert by_key(measured)[f"{source}->VISal4"].count(Status.ACCEPTED) == 36


def test_cache_reuses_results_and_keys_on_settings(synthetic: Synthetic, tmp_path: Path,
                                                   measured: ConnectomeMeasurement) -> None:
    atlas = load_atlas(synthetic.directory)
    connectivity = load_connectivity(synthetic.directory, atlas)
    first = measure_connectome(connectivity, atlas, ["VISp4"], ["VISl4"],
                               cache=ResultCache(tmp_path))
    assert first.cache_hits == 0 and len(list(tmp_path.glob("*.npz"))) == 1
    second = measure_connectome(connectivity, atlas, ["VISp4"], ["VISl4"],
                                cache=ResultCache(tmp_path))
    assert second.cache_hits == 1
    assert second.projections[0].sigma_mm == first.projections[0].sigma_mm
    assert first.projections[0].sigma_mm == by_key(measured)["VISp4->VISl4"].sigma_mm
    other = measure_connectome(connectivity, atlas, ["VISp4"], ["VISl4"],
                               settings=ProfileSettings(border_mm=0.2),
                               cache=ResultCache(tmp_path))
    assert other.cache_hits == 0 and len(list(tmp_path.glob("*.npz"))) == 2


def test_left_hemisphere_weights_are_not_used(synthetic: Synthetic) -> None:
    atlas = load_atlas(synthetic.directory)
    connectivity = load_connectivity(synthetic.directory, atlas)
    both = measure_connectome(connectivity, atlas, ["VISp4"], ["VISal4"], hemisphere="both")
    right = measure_connectome(connectivity, atlas, ["VISp4"], ["VISal4"])
    # both hemispheres' VISal4 voxels are targets, and the left VISp voxels add weight
    assert both.projections[0].target_voxels == 2 * right.projections[0].target_voxels
    assert both.projections[0].source_voxels == 2 * right.projections[0].source_voxels
    assert right.projections[0].count(Status.ACCEPTED) == 36


def test_unknown_and_empty_populations_are_user_errors(synthetic: Synthetic) -> None:
    atlas = load_atlas(synthetic.directory)
    connectivity = load_connectivity(synthetic.directory, atlas)
    with pytest.raises(UserFileError, match=r"structures\.json.*'VISq4'.*VISp4"):
        measure_connectome(connectivity, atlas, ["VISq4"], ["VISl4"])
    with pytest.raises(UserFileError, match="no target voxels in VISp4"):
        measure_connectome(connectivity, atlas, ["VISp4"], ["VISp4"])
