"""A feedback pair (a higher area onto VISp) is measured like any other, and its fragment
merges over a spec that gives the pair its delay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from mnc.compiler import compile_ir
from mnc.errors import SpecError
from mnc.measure import derive_interareal
from tests.conftest import SPECS
from tests.measure.synthetic import structure_records

PITCH_MM = 0.1
SHAPE = (40, 4, 64)  # [AP, DV, ML], midline at ML 32; depth picks the layer
DEPTHS = {"2/3": (0, 1), "4": (2,), "5": (3,)}
AREAS = {"VISp": (385, (0, 8), (34, 42)), "VISl": (409, (22, 38), (34, 50))}
LAYER_IDS = {"2/3": 1, "4": 2, "5": 3}
# VISl's layers onto VISp2/3: Gaussian profiles on VISl's flat map of known width
TRUE_SIGMA_MM = {"VISl5": 0.2, "VISl2/3": 0.3}
AMPLITUDE = {"VISl5": 2.0, "VISl2/3": 0.5}


def layer_id(area: str, layer: str) -> int:
    return AREAS[area][0] * 10 + LAYER_IDS[layer]


def build(directory: Path) -> None:
    """VISp (8 x 8 columns) and VISl (16 x 16 columns) in the right hemisphere; every voxel
    is a source, the upper VISp2/3 voxels (one per column) are the targets."""
    rng = np.random.default_rng(1)
    annotation = np.zeros(SHAPE, dtype=np.int32)
    for area, (_, (x0, x1), (z0, z1)) in AREAS.items():
        for layer, depths in DEPTHS.items():
            for y in depths:
                annotation[x0:x1, y, z0:z1] = layer_id(area, layer)
    x, _, z = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    flat = np.stack([x * PITCH_MM, z * PITCH_MM], axis=-1).astype(np.float64)
    sources = np.argwhere(annotation > 0)
    targets = np.argwhere(annotation == layer_id("VISp", "2/3"))
    targets = targets[targets[:, 1] == 0]
    source_labels = annotation[tuple(sources.T)]
    points = flat[tuple(sources.T)]
    _, (lx0, lx1), (lz0, _) = AREAS["VISl"]
    low, side = np.array([lx0, lz0]) * PITCH_MM, (lx1 - lx0 - 1) * PITCH_MM
    full = np.zeros((len(sources), len(targets)))
    for column, voxel in enumerate(targets):
        # retinotopy: VISp's 8 x 8 columns map onto the middle of VISl
        offset = (voxel[[0, 2]] - np.array([0, AREAS["VISp"][2][0]])) / 7
        centre = low + side * (0.3 + 0.4 * offset)
        for population, sigma in TRUE_SIGMA_MM.items():
            rows = np.flatnonzero(source_labels == layer_id("VISl", population[4:]))
            profile = np.exp(-np.sum((points[rows] - centre) ** 2, axis=1) / (2 * sigma**2))
            noise = 1 + 0.02 * rng.standard_normal(len(rows))
            full[rows, column] = AMPLITUDE[population] * profile * noise
    nodes = np.eye(len(targets))
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in (("annotation", annotation), ("flatmap", flat), ("weights", full),
                        ("nodes", nodes), ("source_voxels", sources),
                        ("target_voxels", targets)):
        np.save(directory / f"{name}.npy", array)
    records = structure_records(AREAS)
    (directory / "structures.json").write_text(json.dumps(records))


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("feedback_model")
    build(directory)
    return derive_interareal(directory, ["VISl5", "VISl2/3"], ["VISp2/3"], use_cache=False,
                             progress=False, date="2026-01-01")


def test_feedback_widths_and_strengths_are_measured(measured) -> None:
    _, measurement = measured
    found = {projection.key: projection for projection in measurement.projections}
    assert set(found) == {"VISl5->VISp2/3", "VISl2/3->VISp2/3"}
    for source, sigma in TRUE_SIGMA_MM.items():
        projection = found[f"{source}->VISp2/3"]
        assert projection.sigma_mm is not None
        assert abs(projection.sigma_mm / sigma - 1) < 0.05, (source, projection.sigma_mm)
        assert projection.summary()["used"] == projection.target_voxels == 64
    # layer 2/3 has two voxels per column and a wider profile, layer 5 a larger amplitude
    expected = {source: AMPLITUDE[source] * TRUE_SIGMA_MM[source] ** 2
                * (2 if source == "VISl2/3" else 1) for source in TRUE_SIGMA_MM}
    total = sum(expected.values())
    for source, value in expected.items():
        assert found[f"{source}->VISp2/3"].strength == pytest.approx(value / total, rel=0.05)


def test_a_feedback_fragment_merges_over_the_delay_of_its_base(measured, tmp_path) -> None:
    text, measurement = measured
    fragment = tmp_path / "fragment.yaml"
    fragment.write_text(text)
    derived = yaml.safe_load(text)["interareal"]["projections"]["VISl5->VISp2/3"]
    spec = tmp_path / "measured.yaml"
    base = tmp_path / "base.yaml"  # the feedback variant without VISl2/3 -> VISp2/3
    base.write_text(f"extends: {SPECS / 'variants' / 'feedback.yaml'}\ninterareal:\n"
                    '  projections: {"VISl2/3->VISp2/3": null}\n')
    head = "extends: [base.yaml, fragment.yaml]\n"
    spec.write_text(head)
    # VISl2/3 -> VISp2/3 is new: the fragment has no delay for it, the spec must add one
    # (the place named is the base's deleted entry: locations survive a null in a merge)
    with pytest.raises(SpecError, match=r"\.yaml:\d+:\d+: interareal\.projections\."
                                        r"VISl2/3->VISp2/3\.delay: .* is feedback"):
        compile_ir(spec)
    spec.write_text(head + 'interareal:\n  projections:\n    "VISl2/3->VISp2/3": {delay: 1}\n')
    ir = compile_ir(spec)
    assert ir.projection("VISl2/3->VISp2/3").delay == 1
    projection = ir.projection("VISl5->VISp2/3")
    assert projection.delay == 1 and projection.upsample == 2
    assert projection.profile.sigma_mm == derived["sigma_mm"]
    assert projection.profile.strength == derived["strength"]
