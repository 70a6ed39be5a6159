"""The written fragments: valid YAML, the spec's shape, and specs extending them compile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import mnc
from mnc.measure import ConnectomeMeasurement, derive_surfaces
from mnc.measure.fragment import interareal_fragment, number, write_fragment
from tests.conftest import DEFAULT_SPEC
from tests.measure.synthetic import TRUE_SIGMA_MM, Synthetic


@pytest.fixture(scope="module")
def interareal(measured: ConnectomeMeasurement, synthetic: Synthetic,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = interareal_fragment(measured, str(synthetic.directory), "2025-01-02")
    path = tmp_path_factory.mktemp("fragments") / "interareal.yaml"
    write_fragment(path, text)
    return path


@pytest.fixture(scope="module")
def surfaces(synthetic: Synthetic, tmp_path_factory: pytest.TempPathFactory) -> Path:
    text, _ = derive_surfaces(synthetic.directory, ["VISp4", "VISp2/3", "VISp5"],
                              date="2025-01-02")
    path = tmp_path_factory.mktemp("fragments") / "surfaces.yaml"
    write_fragment(path, text)
    return path


def test_interareal_fragment_shape(interareal: Path, synthetic: Synthetic) -> None:
    data = yaml.safe_load(interareal.read_text())
    assert set(data) == {"interareal"}
    block = data["interareal"]
    assert "2025-01-02" in block["source"] and "Knox et al. 2019" in block["source"]
    assert str(synthetic.directory) in block["source"]
    assert "VISp4->VISl4 30/36" in block["source"] and len(block["source"]) <= 2000
    assert set(block["projections"]) == {f"{s}->{t}" for s, t in TRUE_SIGMA_MM}
    for (source, target), sigma in TRUE_SIGMA_MM.items():
        entry = block["projections"][f"{source}->{target}"]
        assert set(entry) == {"strength", "sigma_mm"}
        assert entry["sigma_mm"] == pytest.approx(sigma, rel=0.05)
    assert "# 30/36 used (3 multimodal, 3 border" in interareal.read_text()


def test_spec_extending_the_fragments_compiles(interareal: Path, surfaces: Path,
                                               tmp_path: Path) -> None:
    spec = tmp_path / "derived.yaml"
    spec.write_text(yaml.safe_dump({"extends": [str(DEFAULT_SPEC), str(interareal),
                                                str(surfaces)]}))
    ir = mnc.compile_ir(spec)
    derived = yaml.safe_load(interareal.read_text())["interareal"]["projections"]
    for key, entry in derived.items():
        profile = ir.projection(key).profile
        assert profile.sigma_mm == pytest.approx(entry["sigma_mm"])
        assert profile.strength == pytest.approx(entry["strength"])
    # untouched projections keep the published figures
    assert ir.projection("VISl4->VISpor4").profile.sigma_mm == pytest.approx(0.20468)
    assert mnc.compile_ir(DEFAULT_SPEC).projection("VISp4->VISl4").profile.sigma_mm \
        == pytest.approx(0.31317)


def test_surface_fragment_shape(surfaces: Path) -> None:
    block = yaml.safe_load(surfaces.read_text())["surface_area_mm2"]
    # 20 x 20 voxel centres at 0.1 mm: a 1.9 mm square
    assert block["values"] == {"VISp": {"4": pytest.approx(3.61), "2/3": pytest.approx(3.61),
                                        "5": pytest.approx(3.61)}}
    assert set(block["notes"]) == {"VISp4", "VISp2/3", "VISp5"}
    assert "400 voxels" in block["notes"]["VISp4"]
    assert "convex hull" in block["source"]


def test_missing_sigma_falls_back_to_base_and_zero_strength_is_left_out() -> None:
    from mnc.measure.connectome import ConnectomeMeasurement, ProjectionMeasurement
    from mnc.measure.fragment import interareal_fragment
    from mnc.measure.profile import ProfileResults, ProfileSettings, Status

    def results(status: int, count: int) -> ProfileResults:
        return ProfileResults(np.ones(count), np.full(count, status, dtype=np.int8),
                              np.full(count, np.nan), np.zeros(count), np.zeros(count))

    measurement = ConnectomeMeasurement([
        ProjectionMeasurement("VISp4", "VISl4", 2.0, 1.0, None, 10, 0,
                              results(Status.BORDER, 4)),
        ProjectionMeasurement("VISp5", "VISl4", 0.0, 0.0, None, 10, 0,
                              results(Status.EMPTY, 4)),
    ], ProfileSettings(), "right", "model")
    data = yaml.safe_load(interareal_fragment(measurement, "model", "2025-01-02"))
    assert data["interareal"]["projections"] == {"VISp4->VISl4": {"strength": 1.0}}


@pytest.mark.parametrize("value, text", [(0.000012345678, "0.0000123457"), (1.0, "1.0"),
                                         (0.31317, "0.31317"), (123.456789, "123.457")])
def test_numbers_are_plain_decimals(value: float, text: str) -> None:
    assert number(value) == text
    assert yaml.safe_load(f"x: {number(value)}")["x"] == pytest.approx(value, rel=1e-5)
