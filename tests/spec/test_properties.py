"""Properties of the compiler over spec edits (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml

pytest.importorskip("hypothesis", reason="property tests need hypothesis (the test extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mnc.analysis.limits import Limits
from mnc.compiler import compile_ir
from mnc.errors import SpecError
from tests.conftest import DEFAULT_SPEC

CORTICAL = ["VISp", "VISl", "VISrl", "VISli", "VISpl", "VISal", "VISpor"]
HIGHER = CORTICAL[1:]
LAYERS = ["4", "2/3", "5"]
# Properties of the arithmetic, not of building: no network is built, so no memory guard.
GENEROUS = Limits(max_parameters=10**12, max_activation_mb=float(2**30),
                  max_memory_mb=float(2**30))
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def compile_variant(overrides: dict, limits: Limits | None = None):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "variant.yaml"
        path.write_text(yaml.safe_dump({"extends": str(DEFAULT_SPEC), **overrides}))
        return compile_ir(path, limits=limits)


@SETTINGS
@given(removed=st.sets(st.sampled_from(["LGNd", *CORTICAL])))
def test_removing_areas_compiles_iff_a_path_from_the_input_remains(removed):
    overrides = {"areas": {"regions": {area: None for area in removed}}}
    if removed & {"LGNd", "VISp"}:
        # Everything downstream of the thalamus and VISp loses its input.
        with pytest.raises(SpecError, match="has no input|every readout population"):
            compile_variant(overrides)
        return
    ir = compile_variant(overrides)
    names = set(ir.population_names())
    assert not any(area in {p.area for p in ir.populations} for area in removed)
    for projection in ir.projections:
        assert projection.source in names and projection.target in names
    assert set(ir.readout.populations) <= names and ir.readout.populations
    # the remaining sources of every target share its whole in-degree
    totals: dict[str, float] = {}
    for projection in ir.projections:
        if projection.profile.kind == "interareal":
            totals.setdefault(projection.target, projection.profile.strength_total)
            assert projection.profile.strength_total == pytest.approx(totals[projection.target])
    for target, total in totals.items():
        strengths = [q.profile.strength for q in ir.projections
                     if q.target == target and q.profile.kind == "interareal"]
        assert sum(strengths) == pytest.approx(total)


@SETTINGS
@given(counts=st.dictionaries(
    st.tuples(st.sampled_from(HIGHER), st.sampled_from(LAYERS)),
    st.integers(min_value=1, max_value=2_000_000), min_size=1, max_size=8))
def test_channels_are_floor_of_neurons_over_grid(counts):
    overrides: dict = {"neurons": {"counts": {}}}
    for (area, layer), count in counts.items():
        overrides["neurons"]["counts"].setdefault(area, {})[layer] = count
    grid = 32 * 32  # higher areas sit at half the 64x64 input resolution
    if any(count < grid for count in counts.values()):
        with pytest.raises(SpecError, match="would have 0 channels"):
            compile_variant(overrides, limits=GENEROUS)
        return
    ir = compile_variant(overrides, limits=GENEROUS)
    for (area, layer), count in counts.items():
        population = ir.population(f"{area}{layer}")
        assert population.channels == count // grid
        for projection in ir.projections:
            if projection.target == population.name:
                assert projection.out_channels == population.channels
            if projection.source == population.name:
                assert projection.in_channels == population.channels


@SETTINGS
@given(edge_z=st.floats(min_value=0.25, max_value=3.0),
       side=st.sampled_from([16, 32, 48, 64, 96, 128]))
def test_every_projection_lands_on_its_target_grid(edge_z, side):
    try:
        ir = compile_variant({"kernel": {"edge_z": edge_z},
                              "input": {"height_px": side, "width_px": side}},
                             limits=GENEROUS)
    except SpecError as error:  # small inputs starve populations of channels
        assert "0 channels" in str(error)
        return
    for projection in ir.projections:
        source, target = ir.population(projection.source), ir.population(projection.target)
        left, right, top, bottom = projection.padding_lrtb
        kernel, stride = projection.kernel_size, projection.stride
        out_height = (source.height + top + bottom - kernel) // stride + 1
        out_width = (source.width + left + right - kernel) // stride + 1
        assert (out_height, out_width) == (target.height, target.width)
        assert projection.kernel_size % 2 == 1
