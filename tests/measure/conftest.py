"""Fixtures of the measure tests: one synthetic voxel model per session (see synthetic.py)."""

from __future__ import annotations

import pytest

from mnc.measure import ConnectomeMeasurement, load_atlas, load_connectivity, measure_connectome
from tests.measure.synthetic import Synthetic, build_synthetic

SOURCES = ["VISp4", "VISp2/3", "VISp5"]
TARGETS = ["VISl4", "VISal4"]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return build_synthetic(tmp_path_factory.mktemp("voxel_model"))


@pytest.fixture(scope="session")
def measured(synthetic: Synthetic) -> ConnectomeMeasurement:
    """VISp4, VISp2/3, VISp5 -> VISl4, VISal4 with default settings, no cache."""
    atlas = load_atlas(synthetic.directory)
    connectivity = load_connectivity(synthetic.directory, atlas)
    return measure_connectome(connectivity, atlas, SOURCES, TARGETS)
