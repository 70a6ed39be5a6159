"""A hand-built draft IR small enough to check every pass by hand.

input (1x8x8) -> A4 (16 neurons per px... ) -> B4 at half resolution, one projection of each kind.
"""

from __future__ import annotations

from mnc.ir.model import (
    DraftIR,
    FixedProfile,
    InputShape,
    InterarealProfile,
    InterlaminarProfile,
    MaskConfig,
    PopulationDraft,
    ProjectionDraft,
    Provenance,
    ReadoutDraft,
)


def population(
    name: str,
    area: str,
    layer: str | None,
    neurons: int | None,
    pixels_per_degree: float = 1.0,
    surface: float | None = 1.0,
    **derived: object,
) -> PopulationDraft:
    return PopulationDraft(
        name=name,
        area=area,
        layer=layer,
        hierarchy_level=0,
        pixels_per_degree=pixels_per_degree,
        neurons=neurons,
        surface_area_mm2=surface,
        **derived,
    )


def draft(**overrides: object) -> DraftIR:
    populations = [
        population("input", "input", None, None, channels=1),
        population("A4", "A", "4", 8 * 8 * 3, surface=0.25),
        population("A2/3", "A", "2/3", 8 * 8 * 2 + 5, surface=0.25),
        population("B4", "B", "4", 4 * 4 * 7, pixels_per_degree=0.5),
    ]
    projections = [
        ProjectionDraft(
            source="input", target="A4", profile=FixedProfile(sigma_px=1.5, peak_probability=1.0)
        ),
        ProjectionDraft(
            source="A4",
            target="A2/3",
            profile=InterlaminarProfile(
                probability_at_offset=0.14,
                offset_um=75,
                cat_width_um=220,
                cat_reference_width_um=180,
                mouse_reference_width_um=114,
            ),
        ),
        ProjectionDraft(
            source="A2/3",
            target="B4",
            profile=InterarealProfile(
                strength=0.5, strength_total=2.0, sigma_mm=0.2, in_degree=1000
            ),
        ),
    ]
    values = {
        "name": "hand-built",
        "input": InputShape(channels=1, height=8, width=8),
        "edge_z": 1.0,
        "mask": MaskConfig(),
        "provenance": Provenance(spec_name="hand-built"),
        "populations": populations,
        "projections": projections,
        "readout": ReadoutDraft(populations=["B4"], pool_size=2, classes=3),
    }
    values.update(overrides)
    return DraftIR(**values)  # type: ignore[arg-type]


def run_until(pass_names: list[str]) -> DraftIR:
    """The hand-built draft after the named default passes, in order."""
    from mnc.passes import default_passes

    ir = draft()
    for each in default_passes():
        if each.name in pass_names:
            ir = each.run(ir).ir
    return ir
